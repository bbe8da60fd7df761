<?php
/**
 * Firm Bridge → Settings, through the Settings API: sections and fields, each option checked by
 * its register_setting() sanitizer (a refused value keeps the saved one and says why; the other
 * fields are saved as typed), a "Test connection" button, and while the bridge is not configured,
 * a notice on the dashboard and a "Settings" link on the Plugins screen.
 *
 * @package Firm_Bridge
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * The Settings screen.
 */
final class Firm_Bridge_Settings_Page {

	const GROUP       = 'firm_bridge';
	const TEST_ACTION = 'firm_bridge_test_connection';

	/**
	 * Sanitizers that already ran in this request (WordPress runs one twice when an option is
	 * first added, which would print its error twice).
	 *
	 * @var array<string,mixed>
	 */
	private static $sanitized = array();

	/**
	 * Hooks.
	 */
	public static function hooks() {
		add_action( 'admin_init', array( __CLASS__, 'register' ) );
		add_filter( 'option_page_capability_' . self::GROUP, array( __CLASS__, 'capability' ) );
		add_action( 'admin_post_' . self::TEST_ACTION, array( __CLASS__, 'handle_test' ) );
		add_action( 'admin_notices', array( __CLASS__, 'not_configured_notice' ) );
		add_filter( 'plugin_action_links_' . plugin_basename( FIRM_BRIDGE_FILE ), array( __CLASS__, 'plugin_links' ) );
		foreach ( array( Firm_Bridge_Settings::URL, Firm_Bridge_Settings::SECRET ) as $option ) {
			add_action( 'update_option_' . $option, array( __CLASS__, 'connection_changed' ) );
			add_action( 'add_option_' . $option, array( __CLASS__, 'connection_changed' ) );
		}
	}

	/** @return string Who may save the settings (options.php asks). */
	public static function capability() {
		return Firm_Bridge_Roles::MANAGE;
	}

	/**
	 * Settings, sections and fields.
	 */
	public static function register() {
		$page = Firm_Bridge_Admin::SETTINGS;
		register_setting(
			self::GROUP,
			Firm_Bridge_Settings::URL,
			array(
				'type'              => 'string',
				'sanitize_callback' => array( __CLASS__, 'sanitize_url' ),
				'default'           => '',
			)
		);
		register_setting(
			self::GROUP,
			Firm_Bridge_Settings::SECRET,
			array(
				'type'              => 'string',
				'sanitize_callback' => array( __CLASS__, 'sanitize_secret' ),
				'default'           => '',
			)
		);
		register_setting(
			self::GROUP,
			Firm_Bridge_Settings::HOMESERVER,
			array(
				'type'              => 'string',
				'sanitize_callback' => array( __CLASS__, 'sanitize_homeserver' ),
				'default'           => '',
			)
		);
		register_setting(
			self::GROUP,
			Firm_Bridge_Settings::CHAT_PAGE,
			array(
				'type'              => 'integer',
				'sanitize_callback' => array( __CLASS__, 'sanitize_chat_page' ),
				'default'           => 0,
			)
		);

		add_settings_section( 'firm_bridge_bridge', __( 'The bridge', 'firm-bridge' ), array( __CLASS__, 'bridge_section' ), $page );
		add_settings_field( Firm_Bridge_Settings::URL, __( 'Bridge URL', 'firm-bridge' ), array( __CLASS__, 'url_field' ), $page, 'firm_bridge_bridge', array( 'label_for' => Firm_Bridge_Settings::URL ) );
		add_settings_field( Firm_Bridge_Settings::SECRET, __( 'Shared secret', 'firm-bridge' ), array( __CLASS__, 'secret_field' ), $page, 'firm_bridge_bridge', Firm_Bridge_Settings::secret_from_constant() ? array() : array( 'label_for' => Firm_Bridge_Settings::SECRET ) );
		add_settings_section( 'firm_bridge_homeserver', __( 'The homeserver', 'firm-bridge' ), array( __CLASS__, 'homeserver_section' ), $page );
		add_settings_field( Firm_Bridge_Settings::HOMESERVER, __( 'Homeserver address', 'firm-bridge' ), array( __CLASS__, 'homeserver_field' ), $page, 'firm_bridge_homeserver', array( 'label_for' => Firm_Bridge_Settings::HOMESERVER ) );
		add_settings_section( 'firm_bridge_portal', __( 'The portal', 'firm-bridge' ), '__return_false', $page );
		add_settings_field( Firm_Bridge_Settings::CHAT_PAGE, __( 'Chat page', 'firm-bridge' ), array( __CLASS__, 'chat_page_field' ), $page, 'firm_bridge_portal', array( 'label_for' => Firm_Bridge_Settings::CHAT_PAGE ) );
	}

	// --- sanitizers: a refused value keeps the saved one, and says why ---------------------

	/**
	 * @param string $option  Option name.
	 * @param mixed  $value   What was submitted.
	 * @param callable $check Returns the clean value, or a WP_Error.
	 * @return mixed
	 */
	private static function sanitize_once( $option, $value, $check ) {
		if ( array_key_exists( $option, self::$sanitized ) ) {
			return self::$sanitized[ $option ];
		}
		$clean = $check( $value );
		if ( is_wp_error( $clean ) ) {
			add_settings_error( $option, $clean->get_error_code(), $clean->get_error_message(), 'error' );
			$clean = get_option( $option, '' );
		}
		self::$sanitized[ $option ] = $clean;
		return $clean;
	}

	/**
	 * @param mixed $value Submitted URL.
	 * @return string
	 */
	public static function sanitize_url( $value ) {
		return self::sanitize_once(
			Firm_Bridge_Settings::URL,
			$value,
			static function ( $v ) {
				$clean = Firm_Bridge_Settings::clean_url( is_string( $v ) ? $v : '' );
				return null === $clean ? new WP_Error( 'url-invalid', __( 'The bridge URL must be an http or https address; it was not changed.', 'firm-bridge' ) ) : $clean;
			}
		);
	}

	/**
	 * @param mixed $value Submitted address.
	 * @return string
	 */
	public static function sanitize_homeserver( $value ) {
		return self::sanitize_once(
			Firm_Bridge_Settings::HOMESERVER,
			$value,
			static function ( $v ) {
				$clean = Firm_Bridge_Settings::clean_url( is_string( $v ) ? $v : '' );
				return null === $clean ? new WP_Error( 'hs-invalid', __( 'The homeserver address must be an http or https address; it was not changed.', 'firm-bridge' ) ) : $clean;
			}
		);
	}

	/**
	 * The secret is taken as typed (any character is a valid key byte); blank keeps it.
	 *
	 * @param mixed $value Submitted secret.
	 * @return string
	 */
	public static function sanitize_secret( $value ) {
		return self::sanitize_once(
			Firm_Bridge_Settings::SECRET,
			$value,
			static function ( $v ) {
				$v = trim( is_string( $v ) ? $v : '' );
				if ( '' === $v || Firm_Bridge_Settings::secret_from_constant() ) {
					return (string) get_option( Firm_Bridge_Settings::SECRET, '' );
				}
				if ( strlen( $v ) < Firm_Bridge_Settings::MIN_SECRET ) {
					return new WP_Error( 'secret-short', __( 'The shared secret must be at least 32 characters; it was not changed.', 'firm-bridge' ) );
				}
				return $v;
			}
		);
	}

	/**
	 * @param mixed $value Submitted page id.
	 * @return int
	 */
	public static function sanitize_chat_page( $value ) {
		return self::sanitize_once(
			Firm_Bridge_Settings::CHAT_PAGE,
			$value,
			static function ( $v ) {
				$id = absint( $v );
				if ( 0 === $id ) {
					return 0;
				}
				$page = get_post( $id );
				return ( $page && 'page' === $page->post_type && 'publish' === $page->post_status ) ? $id : new WP_Error( 'chat-page-invalid', __( 'The chat page must be a published page; it was not changed.', 'firm-bridge' ) );
			}
		);
	}

	/**
	 * A new address or secret: rows held back while the bridge was unreachable or not
	 * configured may go now.
	 */
	public static function connection_changed() {
		update_option( Firm_Bridge_Outbox::DOWN_UNTIL, 0 );
		Firm_Bridge_Outbox::schedule_next();
	}

	// --- the screen ------------------------------------------------------------------------

	/**
	 * The Settings screen.
	 */
	public static function page() {
		if ( ! current_user_can( Firm_Bridge_Roles::MANAGE ) ) {
			wp_die( esc_html__( 'You may not change the Firm Bridge.', 'firm-bridge' ), 403 );
		}
		echo '<div class="wrap"><h1>' . esc_html__( 'Firm Bridge: Settings', 'firm-bridge' ) . '</h1>';
		settings_errors();
		self::test_result();
		if ( Firm_Bridge_Admin::plain_http_elsewhere( Firm_Bridge_Settings::url() ) ) {
			echo '<div class="notice notice-warning firm-bridge-plain-http"><p>' . esc_html__( 'The bridge URL is plain http to another machine: login tokens and people\'s names would travel on the network unencrypted. Use https.', 'firm-bridge' ) . '</p></div>';
		}
		echo '<form method="post" action="' . esc_url( admin_url( 'options.php' ) ) . '">';
		settings_fields( self::GROUP );
		do_settings_sections( Firm_Bridge_Admin::SETTINGS );
		submit_button( __( 'Save settings', 'firm-bridge' ) );
		echo '</form>';
		echo '<h2>' . esc_html__( 'Connection', 'firm-bridge' ) . '</h2>';
		echo '<p>' . esc_html__( 'Checks, with the saved settings, that the bridge answers and accepts this site\'s signature, and that the homeserver answers.', 'firm-bridge' ) . '</p>';
		Firm_Bridge_Admin::button( self::TEST_ACTION, __( 'Test connection', 'firm-bridge' ), array(), self::TEST_ACTION );
		echo '</div>';
	}

	/** Section text. */
	public static function bridge_section() {
		echo '<p>' . esc_html__( 'Where WordPress sends people, matters and the role table, signed with the shared secret.', 'firm-bridge' ) . '</p>';
	}

	/** Section text. */
	public static function homeserver_section() {
		echo '<p>' . esc_html__( 'The firm\'s Matrix homeserver, as people\'s browsers reach it. The homeserver checks Matrix logins against this site at:', 'firm-bridge' ) . ' <code>' . esc_html( rest_url( 'firm-bridge/v1/login-check' ) ) . '</code></p>';
	}

	/** Field. */
	public static function url_field() {
		printf( '<input type="url" class="regular-text" name="%1$s" id="%1$s" value="%2$s" placeholder="https://bridge.firm.example" />', esc_attr( Firm_Bridge_Settings::URL ), esc_attr( Firm_Bridge_Settings::url() ) );
	}

	/** Field: never printed back; blank keeps it. */
	public static function secret_field() {
		if ( Firm_Bridge_Settings::secret_from_constant() ) {
			echo '<p>' . esc_html__( 'Set by FIRM_BRIDGE_SECRET in wp-config.php.', 'firm-bridge' ) . '</p>';
			return;
		}
		$has = '' !== Firm_Bridge_Settings::secret();
		printf(
			'<input type="password" class="regular-text" name="%1$s" id="%1$s" value="" autocomplete="new-password" placeholder="%2$s" aria-describedby="%1$s-description" />',
			esc_attr( Firm_Bridge_Settings::SECRET ),
			esc_attr( $has ? __( 'Set. Leave blank to keep it.', 'firm-bridge' ) : __( 'Not set', 'firm-bridge' ) )
		);
		echo '<p class="description" id="' . esc_attr( Firm_Bridge_Settings::SECRET ) . '-description">' . esc_html__( 'The bridge configuration\'s provisioning.shared_secret, at least 32 characters. It is never shown again.', 'firm-bridge' ) . '</p>';
	}

	/** Field. */
	public static function homeserver_field() {
		printf( '<input type="url" class="regular-text" name="%1$s" id="%1$s" value="%2$s" placeholder="https://matrix.firm.example" />', esc_attr( Firm_Bridge_Settings::HOMESERVER ), esc_attr( Firm_Bridge_Settings::homeserver() ) );
	}

	/** Field. */
	public static function chat_page_field() {
		wp_dropdown_pages(
			array(
				'name'              => esc_attr( Firm_Bridge_Settings::CHAT_PAGE ),
				'id'                => esc_attr( Firm_Bridge_Settings::CHAT_PAGE ),
				'selected'          => (int) Firm_Bridge_Settings::chat_page(),
				'show_option_none'  => esc_html__( '— None: WordPress\'s own screens —', 'firm-bridge' ),
				'option_none_value' => '0',
			)
		);
		echo '<p class="description">' . esc_html__( 'The page with the [firm_chat] shortcode or the Firm chat block. Clients, paralegals, associates and legal assistants land there after logging in, instead of on their wp-admin profile.', 'firm-bridge' ) . '</p>';
	}

	// --- test connection -------------------------------------------------------------------

	/** Runs the checks and shows them on the Settings screen. */
	public static function handle_test() {
		if ( ! current_user_can( Firm_Bridge_Roles::MANAGE ) ) {
			wp_die( esc_html__( 'You may not change the Firm Bridge.', 'firm-bridge' ), esc_html__( 'Forbidden', 'firm-bridge' ), array( 'response' => 403 ) );
		}
		check_admin_referer( self::TEST_ACTION );
		set_transient( 'firm_bridge_test_' . get_current_user_id(), self::test(), 120 );
		wp_safe_redirect( add_query_arg( array( 'page' => Firm_Bridge_Admin::SETTINGS ), admin_url( 'admin.php' ) ) );
		exit;
	}

	/**
	 * The bridge (a signed read of its role table: it answers and accepts this site's signature)
	 * and the homeserver (its client API's versions).
	 *
	 * @return array[] array{name:string, ok:bool, text:string} per part.
	 */
	public static function test() {
		$out = array();
		if ( ! Firm_Bridge_Settings::configured() ) {
			$out[] = array(
				'name' => __( 'Bridge', 'firm-bridge' ),
				'ok'   => false,
				'text' => __( 'not configured: set its URL and a shared secret of at least 32 characters', 'firm-bridge' ),
			);
		} else {
			$result = Firm_Bridge_Client::send( 'GET', '/_firm/v1/policy', '', Firm_Bridge_Client::request_id(), min( 5, Firm_Bridge_Settings::timeout() ) );
			if ( 200 === $result['status'] ) {
				$text = __( 'answers, and accepts this site\'s signature', 'firm-bridge' );
			} elseif ( 401 === $result['status'] ) {
				$text = __( 'answers, but refuses this site\'s signature: the shared secret differs from the bridge\'s provisioning.shared_secret (or the clocks differ by more than 5 minutes)', 'firm-bridge' );
			} else {
				$text = (string) $result['error'];
			}
			$out[] = array(
				'name' => __( 'Bridge', 'firm-bridge' ),
				'ok'   => 200 === $result['status'],
				'text' => $text,
			);
			if ( 200 === $result['status'] ) {
				$pending = Firm_Bridge_Outbox::count( 'pending' );
				$failed  = Firm_Bridge_Outbox::count( 'failed' );
				$out[]   = array(
					'name' => __( 'Outbox', 'firm-bridge' ),
					'ok'   => 0 === $failed,
					/* translators: 1: requests waiting, 2: requests refused */
					'text' => sprintf( __( '%1$d waiting, %2$d refused', 'firm-bridge' ), $pending, $failed ),
				);
			}
		}
		$hs = Firm_Bridge_Settings::homeserver();
		if ( '' === $hs ) {
			$out[] = array(
				'name' => __( 'Homeserver', 'firm-bridge' ),
				'ok'   => false,
				'text' => __( 'not configured', 'firm-bridge' ),
			);
		} else {
			$response = wp_remote_get(
				$hs . '/_matrix/client/versions',
				array(
					'timeout'     => 5,
					'redirection' => 0,
				)
			);
			$status   = is_wp_error( $response ) ? null : (int) wp_remote_retrieve_response_code( $response );
			$versions = null === $status ? null : json_decode( (string) wp_remote_retrieve_body( $response ), true );
			$ok       = 200 === $status && is_array( $versions ) && isset( $versions['versions'] ) && is_array( $versions['versions'] );
			if ( $ok ) {
				/* translators: %s: newest Matrix spec version the homeserver supports */
				$text = sprintf( __( 'answers (Matrix %s)', 'firm-bridge' ), (string) end( $versions['versions'] ) );
			} elseif ( null === $status ) {
				$text = 'no answer: ' . $response->get_error_message();
			} else {
				/* translators: %d: HTTP status */
				$text = sprintf( __( 'answered HTTP %d, not as a Matrix homeserver', 'firm-bridge' ), $status );
			}
			$out[] = array(
				'name' => __( 'Homeserver', 'firm-bridge' ),
				'ok'   => $ok,
				'text' => $text,
			);
		}
		return $out;
	}

	/** The last Test connection result of this user, once. */
	private static function test_result() {
		$key    = 'firm_bridge_test_' . get_current_user_id();
		$result = get_transient( $key );
		delete_transient( $key );
		if ( ! is_array( $result ) ) {
			return;
		}
		$ok = ! in_array( false, wp_list_pluck( $result, 'ok' ), true );
		printf( '<div class="notice notice-%s firm-bridge-connection"><p>%s</p><ul>', $ok ? 'success' : 'error', esc_html( $ok ? __( 'Connection tested: everything answers.', 'firm-bridge' ) : __( 'Connection tested: something needs attention.', 'firm-bridge' ) ) );
		foreach ( $result as $part ) {
			printf( '<li><strong>%s:</strong> %s %s</li>', esc_html( $part['name'] ), esc_html( $part['ok'] ? '✓' : '✗' ), esc_html( $part['text'] ) );
		}
		echo '</ul></div>';
	}

	// --- not configured ----------------------------------------------------------------------

	/**
	 * Everywhere in wp-admin but the Settings screen itself, while nothing can be sent.
	 */
	public static function not_configured_notice() {
		if ( Firm_Bridge_Settings::configured() || ! current_user_can( Firm_Bridge_Roles::MANAGE ) ) {
			return;
		}
		$screen = function_exists( 'get_current_screen' ) ? get_current_screen() : null;
		if ( $screen && false !== strpos( (string) $screen->id, Firm_Bridge_Admin::SETTINGS ) ) {
			return;
		}
		printf(
			'<div class="notice notice-warning firm-bridge-not-configured"><p>%s <a href="%s">%s</a></p></div>',
			esc_html__( 'Firm Bridge is not connected to the chat bridge yet: nothing about people or matters reaches secure chat until its URL and shared secret are set.', 'firm-bridge' ),
			esc_url( self::url() ),
			esc_html__( 'Open the Firm Bridge settings', 'firm-bridge' )
		);
	}

	/**
	 * @param array $links The plugin's links on the Plugins screen.
	 * @return array
	 */
	public static function plugin_links( $links ) {
		if ( current_user_can( Firm_Bridge_Roles::MANAGE ) ) {
			array_unshift( $links, '<a href="' . esc_url( self::url() ) . '">' . esc_html__( 'Settings', 'firm-bridge' ) . '</a>' );
		}
		return $links;
	}

	/** @return string The screen's address. */
	public static function url() {
		return add_query_arg( array( 'page' => Firm_Bridge_Admin::SETTINGS ), admin_url( 'admin.php' ) );
	}
}
