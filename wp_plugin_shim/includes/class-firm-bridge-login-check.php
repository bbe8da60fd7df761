<?php
/**
 * POST /wp-json/firm-bridge/v1/login-check: the homeserver (through the bridge) asks whether a
 * login and password are right, signed with the provisioning scheme and secret.
 *
 * The password goes to wp_authenticate() and nowhere else: it is not stored, logged or echoed.
 * A wrong password and an unknown login get the same answer. Unsigned, badly signed or stale
 * calls get 401, a replayed request id 409, and a login with too many recent failures 429.
 *
 * Failures are limited per account, per end-user address (`address`, which the homeserver's
 * module and the bridge pass in the signed body) and for the whole firm. A lock on an account
 * set by failures from elsewhere does not stop its owner: an address the account has signed in
 * from before (a known address) is limited on its own, so nobody outside can lock a partner out
 * of chat. The firm-wide limit stops a guesser spread over many addresses, again except from
 * known addresses.
 *
 * @package Firm_Bridge
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * The login check route.
 */
final class Firm_Bridge_Login_Check {

	const ROUTE        = '/login-check';
	const MAX_FAILURES = 10;
	const WINDOW       = 300;
	// Failures from one address (whatever the account), and from anywhere for the whole firm,
	// within WINDOW seconds. The option firm_bridge_login_limits and the filter of the same
	// name may change all three ('account', 'address', 'firm').
	const ADDRESS_FAILURES = 30;
	const FIRM_FAILURES    = 300;
	// Addresses each account signed in from, kept as keyed hashes (user meta), the newest first.
	const KNOWN_META      = '_firm_bridge_login_addresses';
	const KNOWN_ADDRESSES = 20;
	const KNOWN_DAYS      = 90;

	/** @return string */
	public static function table() {
		global $wpdb;
		return $wpdb->prefix . 'firm_bridge_seen';
	}

	/**
	 * The table of request ids already used.
	 */
	public static function install() {
		global $wpdb;
		require_once ABSPATH . 'wp-admin/includes/upgrade.php';
		$table   = self::table();
		$charset = $wpdb->get_charset_collate();
		dbDelta(
			"CREATE TABLE {$table} (
			request_id varchar(128) NOT NULL,
			received_at bigint(20) NOT NULL,
			PRIMARY KEY  (request_id),
			KEY received_at (received_at)
			) {$charset};"
		);
	}

	/**
	 * Hooks.
	 */
	public static function hooks() {
		add_action( 'rest_api_init', array( __CLASS__, 'route' ) );
	}

	/**
	 * Route registration. The signature is the permission: checked before anything else.
	 */
	public static function route() {
		register_rest_route(
			Firm_Bridge_Rest::NS,
			self::ROUTE,
			array(
				'methods'             => 'POST',
				'callback'            => array( __CLASS__, 'handle' ),
				'permission_callback' => array( __CLASS__, 'signed' ),
			)
		);
	}

	/**
	 * The request path and query exactly as received: what the caller signed.
	 *
	 * @return string
	 */
	public static function received_path() {
		return isset( $_SERVER['REQUEST_URI'] ) ? (string) wp_unslash( $_SERVER['REQUEST_URI'] ) : ''; // phpcs:ignore WordPress.Security.ValidatedSanitizedInput
	}

	/**
	 * @param WP_REST_Request $request Request.
	 * @return true|WP_Error
	 */
	public static function signed( $request ) {
		$secret = Firm_Bridge_Settings::secret();
		if ( strlen( $secret ) < Firm_Bridge_Settings::MIN_SECRET ) {
			// A short secret (say, a FIRM_BRIDGE_SECRET constant of "changeme") is guessable:
			// nothing signed with it is believed.
			$secret = '';
		}
		try {
			$request_id = Firm_Bridge_Signer::verify(
				$secret,
				$request->get_method(),
				self::received_path(),
				static function ( $name ) use ( $request ) {
					return $request->get_header( $name );
				},
				$request->get_body(),
				time(),
				Firm_Bridge_Settings::MAX_SKEW
			);
		} catch ( Firm_Bridge_Signature_Error $e ) {
			return new WP_Error(
				'firm_bridge_unauthorized',
				$e->field . ': ' . $e->getMessage(),
				array(
					'status' => 401,
					'field'  => $e->field,
				)
			);
		}
		$request->set_param( '_firm_request_id', $request_id );
		return true;
	}

	/**
	 * @param WP_REST_Request $request Request.
	 * @return WP_REST_Response|WP_Error
	 */
	public static function handle( $request ) {
		$data = json_decode( $request->get_body(), true );
		if ( ! is_array( $data ) || array_is_list( $data ) ) {
			return self::bad( 'body', 'must be a JSON object with login and password' );
		}
		foreach ( array( 'login' => 255, 'password' => 4096 ) as $field => $max ) {
			if ( ! isset( $data[ $field ] ) || ! is_string( $data[ $field ] ) || '' === $data[ $field ] ) {
				return self::bad( $field, 'is required and must be a non-empty string' );
			}
			if ( strlen( $data[ $field ] ) > $max ) {
				return self::bad( $field, 'is longer than ' . $max . ' bytes' );
			}
		}
		$address = null;
		if ( array_key_exists( 'address', $data ) ) {
			if ( ! is_string( $data['address'] ) || false === filter_var( $data['address'], FILTER_VALIDATE_IP ) ) {
				return self::bad( 'address', 'must be the IP address of the person signing in' );
			}
			$address = self::address_key( $data['address'] );
		}
		$login    = $data['login'];
		$password = $data['password'];
		$account  = self::find_user( $login );
		$limit    = self::limit_key( $login, $account );
		$counters = self::counters( $limit, $account, $address );
		foreach ( $counters as $name => list( $kind, $max ) ) {
			$failures = get_transient( $name );
			if ( is_array( $failures ) && (int) $failures['count'] >= $max ) {
				$retry = max( 1, (int) $failures['since'] + self::WINDOW - time() );
				return new WP_Error(
					'firm_bridge_rate_limited',
					'too many failed attempts; try again later',
					array(
						'status'         => 429,
						'limit'          => $kind,
						'retry_after_ms' => $retry * 1000,
					)
				);
			}
		}
		if ( ! self::claim( (string) $request->get_param( '_firm_request_id' ) ) ) {
			return new WP_Error(
				'firm_bridge_replayed',
				'this request id was already used',
				array(
					'status' => 409,
					'field'  => Firm_Bridge_Signer::REQUEST_ID_HEADER,
				)
			);
		}
		$user = self::authenticate( $login, $password, null !== $account );
		if ( ! $user ) {
			// Every failure counts against the account, the address and the firm, whichever
			// of those limits this request was held to.
			$names = array( $limit, 'firm_bridge_lc_all' );
			if ( null !== $address ) {
				$names[] = 'firm_bridge_lc_a' . $address;
			}
			$names = array_unique( array_merge( $names, array_keys( $counters ) ) );
			foreach ( $names as $name ) {
				self::count_failure( $name );
			}
			return rest_ensure_response( array( 'valid' => false ) );
		}
		// A right password forgives earlier typos, but does not lift a lock that failures
		// from elsewhere set: the owner passes it from a known address anyway.
		$held = get_transient( $limit );
		if ( ! is_array( $held ) || (int) $held['count'] < self::limits()['account'] ) {
			delete_transient( $limit );
		}
		if ( null !== $address ) {
			delete_transient( self::pair_key( (int) $user->ID, $address ) );
			self::remember_address( (int) $user->ID, $address );
		}
		return rest_ensure_response(
			array(
				'valid'  => true,
				'wp_id'  => (int) $user->ID,
				'login'  => $user->user_login,
				'active' => Firm_Bridge_People::active( (int) $user->ID ),
			)
		);
	}

	/**
	 * The limits in force: failures per account, per address and for the firm, per WINDOW.
	 *
	 * @return array{account:int,address:int,firm:int}
	 */
	public static function limits() {
		$limits = array(
			'account' => self::MAX_FAILURES,
			'address' => self::ADDRESS_FAILURES,
			'firm'    => self::FIRM_FAILURES,
		);
		$stored = get_option( 'firm_bridge_login_limits' );
		foreach ( array_keys( $limits ) as $kind ) {
			if ( is_array( $stored ) && isset( $stored[ $kind ] ) && (int) $stored[ $kind ] > 0 ) {
				$limits[ $kind ] = (int) $stored[ $kind ];
			}
		}
		return (array) apply_filters( 'firm_bridge_login_limits', $limits );
	}

	/**
	 * The failure counters this request is held to, name => array( kind, limit ). From an
	 * address the account signed in from before, its own counter for that address takes the
	 * place of the account's and the firm's (which others' failures may have filled).
	 *
	 * @param string       $limit   The account's counter (limit_key()).
	 * @param WP_User|null $account The account the login names.
	 * @param string|null  $address The address's key (address_key()), if the caller gave one.
	 * @return array<string,array{0:string,1:int}>
	 */
	private static function counters( $limit, $account, $address ) {
		$limits   = self::limits();
		$counters = array();
		if ( null !== $address ) {
			$counters[ 'firm_bridge_lc_a' . $address ] = array( 'address', $limits['address'] );
		}
		if ( null !== $account && null !== $address && self::is_known( (int) $account->ID, $address ) ) {
			$counters[ self::pair_key( (int) $account->ID, $address ) ] = array( 'account', $limits['account'] );
		} else {
			$counters['firm_bridge_lc_all'] = array( 'firm', $limits['firm'] );
			$counters[ $limit ]             = array( 'account', $limits['account'] );
		}
		return $counters;
	}

	/**
	 * One more failure on a counter; the window starts with its first failure.
	 *
	 * @param string $name Transient name.
	 */
	private static function count_failure( $name ) {
		$failures = get_transient( $name );
		$count    = is_array( $failures ) ? (int) $failures['count'] + 1 : 1;
		$since    = is_array( $failures ) ? (int) $failures['since'] : time();
		set_transient(
			$name,
			array(
				'count' => $count,
				'since' => $since,
			),
			max( 1, $since + self::WINDOW - time() )
		);
	}

	/**
	 * What an address is counted and remembered as: a keyed hash (no address is stored in the
	 * clear) of an IPv4 address, or of an IPv6 address's /64, which one subscriber holds whole.
	 *
	 * @param string $address A valid IP address.
	 * @return string 32 hex characters.
	 */
	private static function address_key( $address ) {
		$packed = (string) inet_pton( $address );
		if ( 16 === strlen( $packed ) && 0 === strpos( $packed, str_repeat( "\0", 10 ) . "\xff\xff" ) ) {
			$packed = substr( $packed, 12 ); // An IPv4 address written as IPv6.
		} elseif ( 16 === strlen( $packed ) ) {
			$packed = substr( $packed, 0, 8 );
		}
		return substr( hash_hmac( 'sha256', $packed, wp_salt( 'auth' ) ), 0, 32 );
	}

	/**
	 * @param int    $user_id Account.
	 * @param string $address Address key.
	 * @return string Transient name of the account's counter for that address.
	 */
	private static function pair_key( $user_id, $address ) {
		return 'firm_bridge_lc_p' . $user_id . '_' . substr( $address, 0, 16 );
	}

	/**
	 * @param int    $user_id Account.
	 * @param string $address Address key.
	 * @return bool Whether the account signed in from this address within KNOWN_DAYS.
	 */
	private static function is_known( $user_id, $address ) {
		$known = get_user_meta( $user_id, self::KNOWN_META, true );
		return is_array( $known ) && isset( $known[ $address ] )
			&& (int) $known[ $address ] > time() - self::KNOWN_DAYS * DAY_IN_SECONDS;
	}

	/**
	 * @param int    $user_id Account that signed in.
	 * @param string $address Address key it signed in from.
	 */
	private static function remember_address( $user_id, $address ) {
		$known = get_user_meta( $user_id, self::KNOWN_META, true );
		$known = is_array( $known ) ? $known : array();
		unset( $known[ $address ] );
		$known  = array( $address => time() ) + $known;
		$cutoff = time() - self::KNOWN_DAYS * DAY_IN_SECONDS;
		$known  = array_slice( array_filter( $known, static fn( $t ) => (int) $t > $cutoff ), 0, self::KNOWN_ADDRESSES, true );
		update_user_meta( $user_id, self::KNOWN_META, $known );
	}

	/**
	 * WordPress's own password check, with nothing but passwords counting: application
	 * passwords are for API clients, not for signing in to chat.
	 *
	 * @param string $login    Login or e-mail address.
	 * @param string $password Password.
	 * @param bool   $exists   Whether the login names an account (find_user()).
	 * @return WP_User|null
	 */
	private static function authenticate( $login, $password, $exists ) {
		if ( ! $exists ) {
			// Spend what a real check spends, so timing does not tell unknown logins apart.
			wp_check_password( $password, self::dummy_hash() );
		}
		add_filter( 'application_password_is_api_request', '__return_false', 999 );
		try {
			$user = wp_authenticate( $login, $password );
		} finally {
			remove_filter( 'application_password_is_api_request', '__return_false', 999 );
		}
		return ( $user instanceof WP_User ) ? $user : null;
	}

	/**
	 * Records a request id; false if it was used before. Atomic: the primary key decides.
	 *
	 * @param string $request_id Request id.
	 * @return bool
	 */
	public static function claim( $request_id ) {
		global $wpdb;
		$table = self::table();
		$rows  = $wpdb->query(
			$wpdb->prepare( "INSERT IGNORE INTO {$table} (request_id, received_at) VALUES (%s, %d)", $request_id, time() )
		);
		return 1 === (int) $rows;
	}

	/**
	 * Forgets ids older than any timestamp the check still accepts.
	 */
	public static function prune() {
		global $wpdb;
		$table = self::table();
		$wpdb->query( $wpdb->prepare( "DELETE FROM {$table} WHERE received_at < %d", time() - 2 * Firm_Bridge_Settings::MAX_SKEW ) );
	}

	/**
	 * The failure counter's name: per account, however the login was typed (WordPress signs in
	 * "alice", "Alice", "<b>alice" and alice's e-mail address alike), else per cleaned name.
	 *
	 * @param string       $login Login as given.
	 * @param WP_User|null $user  The account it names (find_user()).
	 * @return string Transient name.
	 */
	private static function limit_key( $login, $user ) {
		if ( null !== $user ) {
			return 'firm_bridge_lc_u' . (int) $user->ID;
		}
		return 'firm_bridge_lc_' . md5( strtolower( trim( sanitize_user( $login ) ) ) );
	}

	/**
	 * The account wp_authenticate() would check this login against, if any.
	 *
	 * @param string $login Login or e-mail address as given.
	 * @return WP_User|null
	 */
	private static function find_user( $login ) {
		$user = get_user_by( 'login', sanitize_user( $login ) );
		if ( ! $user && is_email( $login ) ) {
			$user = get_user_by( 'email', $login );
		}
		return $user ? $user : null;
	}

	/**
	 * A hash made the way this WordPress makes them (its cost changes between versions), for
	 * the check an unknown login gets.
	 *
	 * @return string
	 */
	private static function dummy_hash() {
		$version = (string) get_bloginfo( 'version' );
		$kept    = get_option( 'firm_bridge_dummy_hash' );
		if ( ! is_array( $kept ) || ( $kept['version'] ?? '' ) !== $version || empty( $kept['hash'] ) ) {
			$kept = array(
				'version' => $version,
				'hash'    => wp_hash_password( wp_generate_password( 32, true, true ) ),
			);
			update_option( 'firm_bridge_dummy_hash', $kept, false );
		}
		return (string) $kept['hash'];
	}

	/**
	 * @param string $field   Field at fault.
	 * @param string $message What is wrong.
	 * @return WP_Error
	 */
	private static function bad( $field, $message ) {
		return new WP_Error(
			'firm_bridge_bad_field',
			$field . ': ' . $message,
			array(
				'status' => 400,
				'field'  => $field,
			)
		);
	}
}
