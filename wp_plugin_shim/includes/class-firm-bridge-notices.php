<?php
/**
 * Notices that carry nothing (issue 13): the e-mail the bridge asks for, each person's notice
 * preferences, and their unread count for the portal's menu and the admin bar.
 *
 * - POST /wp-json/firm-bridge/v1/notices: the bridge, signed with the provisioning scheme, asks
 *   for one e-mail to a person who has had something unread past their delay. It is sent with
 *   wp_mail() (so the firm's SMTP plugin applies) and says only that there is something to read:
 *   no message text, no sender, and no matter title unless the firm turns titles on, and then
 *   only for matters that are not privileged. Each notice id is handled once: a retry (a lost
 *   answer, a restart of either side) gets the first answer again and sends nothing.
 * - The profile's "Chat notifications" section: e-mail after the firm's delay, another delay, or
 *   never. Sent to the bridge through the outbox (PUT /_firm/v1/people/{id}/notices), and
 *   checked again here when a notice arrives, so turning e-mail off holds at once.
 * - GET /wp-json/firm-bridge/v1/unread: the logged-in person's unread count, asked of the bridge
 *   (which asks the homeserver); no parameter names anyone else.
 *
 * @package Firm_Bridge
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * Notices, preferences and unread counts.
 */
final class Firm_Bridge_Notices {

	const ROUTE        = '/notices';
	const UNREAD_ROUTE = '/unread';
	const META_PREF    = 'firm_bridge_notice_delay';
	const NONCE        = 'firm_bridge_notices';
	const NONCE_FIELD  = '_firm_bridge_notices_nonce';
	const TITLES       = 'firm_bridge_notice_titles';
	const OBJECT_TYPE  = 'notices';
	// A notice being sent by another request is left alone this long, then taken over (its
	// request died before it could say whether the mail went).
	const LEASE       = 300;
	const KEEP_DAYS   = 90;
	const UNREAD_TTL  = 15;
	const NOTICE_ID_RE = '/\A[A-Za-z0-9._:\-]{8,128}\z/';

	/**
	 * What a person may choose, in minutes ('' the firm's delay, 'off' never).
	 */
	const CHOICES = array( '', '5', '15', '30', '60', '120', '240', '480', 'off' );

	/**
	 * Whether this request wrote an outbox row (delivered at its end).
	 *
	 * @var bool
	 */
	private static $written = false;

	/** @return string */
	public static function table() {
		global $wpdb;
		return $wpdb->prefix . 'firm_bridge_notices';
	}

	/**
	 * The table of notice ids handled.
	 */
	public static function install() {
		global $wpdb;
		require_once ABSPATH . 'wp-admin/includes/upgrade.php';
		$table   = self::table();
		$charset = $wpdb->get_charset_collate();
		dbDelta(
			"CREATE TABLE {$table} (
			notice_id varchar(128) NOT NULL,
			user_id bigint(20) unsigned NOT NULL,
			status varchar(20) NOT NULL,
			created_at bigint(20) NOT NULL,
			updated_at bigint(20) NOT NULL,
			PRIMARY KEY  (notice_id),
			KEY created_at (created_at)
			) {$charset};"
		);
	}

	/**
	 * Hooks.
	 */
	public static function hooks() {
		add_action( 'rest_api_init', array( __CLASS__, 'routes' ) );
		add_action( 'show_user_profile', array( __CLASS__, 'profile_section' ), 20 );
		add_action( 'edit_user_profile', array( __CLASS__, 'profile_section' ), 20 );
		add_action( 'personal_options_update', array( __CLASS__, 'save_profile' ) );
		add_action( 'edit_user_profile_update', array( __CLASS__, 'save_profile' ) );
		add_action( 'shutdown', array( __CLASS__, 'shutdown' ), 1 );
		add_action( 'admin_init', array( __CLASS__, 'register_setting' ) );
		add_action( 'admin_bar_menu', array( __CLASS__, 'admin_bar' ), 80 );
		add_filter( 'wp_nav_menu_objects', array( __CLASS__, 'menu_badge' ) );
		add_action( 'wp_enqueue_scripts', array( __CLASS__, 'enqueue_script' ) );
		add_action( 'admin_enqueue_scripts', array( __CLASS__, 'enqueue_script' ) );
		add_action( Firm_Bridge_Outbox::TICK_HOOK, array( __CLASS__, 'prune' ) );
	}

	// --- the bridge's call: one e-mail per notice id -----------------------------------------

	/**
	 * Routes. The notice route's permission is its signature (the login check's verifier).
	 */
	public static function routes() {
		register_rest_route(
			Firm_Bridge_Rest::NS,
			self::ROUTE,
			array(
				'methods'             => 'POST',
				'callback'            => array( __CLASS__, 'handle' ),
				'permission_callback' => array( 'Firm_Bridge_Login_Check', 'signed' ),
			)
		);
		register_rest_route(
			Firm_Bridge_Rest::NS,
			self::UNREAD_ROUTE,
			array(
				'methods'             => 'GET',
				'callback'            => array( __CLASS__, 'unread' ),
				'permission_callback' => static function () {
					if ( is_user_logged_in() ) {
						return true;
					}
					return new WP_Error( 'firm_chat_login', __( 'Log in to see your messages.', 'firm-bridge' ), array( 'status' => 401 ) );
				},
			)
		);
	}

	/**
	 * @param string $field   The field at fault.
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

	/**
	 * @param WP_REST_Request $request Request.
	 * @return WP_REST_Response|WP_Error
	 */
	public static function handle( $request ) {
		global $wpdb;
		$data = json_decode( $request->get_body(), true );
		if ( ! is_array( $data ) || array_is_list( $data ) ) {
			return self::bad( 'body', 'must be a JSON object' );
		}
		$notice_id = $data['notice_id'] ?? null;
		if ( ! is_string( $notice_id ) || 1 !== preg_match( self::NOTICE_ID_RE, $notice_id ) ) {
			return self::bad( 'notice_id', 'must be 8 to 128 characters of [A-Za-z0-9._:-]' );
		}
		$person = $data['person'] ?? null;
		if ( ! is_int( $person ) || $person <= 0 ) {
			return self::bad( 'person', 'must be a WordPress user id' );
		}
		$matters = $data['matters'] ?? array();
		if ( ! is_array( $matters ) || ! array_is_list( $matters ) || count( $matters ) > 1000 ) {
			return self::bad( 'matters', 'must be a list of matter ids' );
		}
		foreach ( $matters as $i => $m ) {
			if ( ! is_int( $m ) || $m <= 0 ) {
				return self::bad( 'matters[' . $i . ']', 'must be a matter id' );
			}
		}
		$user = get_userdata( $person );
		if ( ! $user ) {
			return new WP_Error(
				'firm_bridge_no_person',
				'person: no such user',
				array(
					'status' => 404,
					'field'  => 'person',
				)
			);
		}
		$table = self::table();
		$now   = time();
		// Claim the id; only the request that inserts it may send.
		$claimed = $wpdb->query(
			$wpdb->prepare(
				"INSERT IGNORE INTO {$table} (notice_id, user_id, status, created_at, updated_at) VALUES (%s, %d, %s, %d, %d)",
				$notice_id,
				$person,
				'sending',
				$now,
				$now
			)
		);
		if ( 1 !== (int) $claimed ) {
			$row = $wpdb->get_row( $wpdb->prepare( "SELECT user_id, status, updated_at FROM {$table} WHERE notice_id = %s", $notice_id ), ARRAY_A );
			if ( ! $row || (int) $row['user_id'] !== $person ) {
				return new WP_Error( 'firm_bridge_notice_conflict', 'notice_id: already used for another person', array( 'status' => 409, 'field' => 'notice_id' ) );
			}
			if ( 'sending' !== $row['status'] ) {
				return self::answer( $row['status'], true );
			}
			// Another request is sending it; once its lease runs out, its request has died.
			$taken = $wpdb->query(
				$wpdb->prepare(
					"UPDATE {$table} SET updated_at = %d WHERE notice_id = %s AND status = %s AND updated_at < %d",
					$now,
					$notice_id,
					'sending',
					$now - self::LEASE
				)
			);
			if ( 1 !== (int) $taken ) {
				return new WP_Error( 'firm_bridge_notice_busy', 'this notice is being sent', array( 'status' => 409 ) );
			}
		}
		$status = self::deliver( $user, $matters );
		if ( null === $status ) {
			// wp_mail() failed: forget the claim so the bridge's retry tries again.
			$wpdb->delete( $table, array( 'notice_id' => $notice_id ) );
			error_log( sprintf( 'firm-bridge: notice %s for user %d: wp_mail failed', $notice_id, $person ) ); // phpcs:ignore WordPress.PHP.DevelopmentFunctions
			return new WP_Error( 'firm_bridge_mail_failed', 'the e-mail could not be sent', array( 'status' => 503 ) );
		}
		$wpdb->update(
			$table,
			array(
				'status'     => $status,
				'updated_at' => time(),
			),
			array( 'notice_id' => $notice_id )
		);
		return self::answer( $status, false );
	}

	/**
	 * @param string $status    What became of the notice.
	 * @param bool   $duplicate Whether an earlier request handled it.
	 * @return WP_REST_Response
	 */
	private static function answer( $status, $duplicate ) {
		return rest_ensure_response(
			array(
				'status'    => $status,
				'duplicate' => $duplicate,
			)
		);
	}

	/**
	 * Sends the e-mail if the person wants it.
	 *
	 * @param WP_User $user    The person.
	 * @param int[]   $matters Matters with something unread (the bridge's answer).
	 * @return string|null sent, off, inactive or no_address; null when wp_mail() failed.
	 */
	private static function deliver( WP_User $user, array $matters ) {
		if ( 'off' === self::preference( (int) $user->ID ) ) {
			return 'off';
		}
		if ( ! Firm_Bridge_People::active( (int) $user->ID ) ) {
			return 'inactive';
		}
		if ( ! is_email( $user->user_email ) ) {
			return 'no_address';
		}
		$mail = self::compose( $user, $matters );
		return wp_mail( $user->user_email, $mail['subject'], $mail['body'] ) ? 'sent' : null;
	}

	/**
	 * The e-mail: that there is something to read, and where. Nothing of the messages, nor who
	 * wrote them, nor (unless the firm turns titles on) which matter.
	 *
	 * @param WP_User $user    The person.
	 * @param int[]   $matters Matter ids.
	 * @return array{subject:string, body:string}
	 */
	public static function compose( WP_User $user, array $matters ) {
		$site    = wp_specialchars_decode( (string) get_option( 'blogname' ), ENT_QUOTES );
		$page    = Firm_Bridge_Settings::chat_page();
		$link    = $page ? get_permalink( $page ) : '';
		$link    = $link ? $link : home_url( '/' );
		$profile = admin_url( 'profile.php#firm-bridge-notices' );
		$lines   = array(
			/* translators: %s: the person's name */
			sprintf( __( 'Hello %s,', 'firm-bridge' ), $user->display_name ),
			'',
			__( 'You have unread messages in your secure portal.', 'firm-bridge' ),
		);
		$titles = self::titles( $matters );
		if ( $titles ) {
			$lines[] = __( 'About:', 'firm-bridge' );
			foreach ( $titles as $title ) {
				$lines[] = '- ' . $title;
			}
		}
		$lines = array_merge(
			$lines,
			array(
				'',
				__( 'Read them here (you will be asked to log in):', 'firm-bridge' ),
				$link,
				'',
				__( 'For your privacy this e-mail does not contain the messages or say who sent them. Please do not reply to it.', 'firm-bridge' ),
				/* translators: %s: link to the profile */
				sprintf( __( 'To change when you get these e-mails, or to stop them: %s', 'firm-bridge' ), $profile ),
			)
		);
		return array(
			/* translators: %s: the site's name */
			'subject' => sprintf( __( '[%s] You have unread messages', 'firm-bridge' ), $site ),
			'body'    => implode( "\n", $lines ) . "\n",
		);
	}

	/**
	 * Titles the e-mail may name: none unless the firm turned them on, and never a privileged
	 * matter's (a title can itself be privileged).
	 *
	 * @param int[] $matters Matter ids.
	 * @return string[]
	 */
	private static function titles( array $matters ) {
		if ( ! get_option( self::TITLES, false ) ) {
			return array();
		}
		$out = array();
		foreach ( array_slice( $matters, 0, 10 ) as $id ) {
			$post = get_post( $id );
			if ( ! $post || Firm_Bridge_Matters::POST_TYPE !== $post->post_type ) {
				continue;
			}
			if ( Firm_Bridge_Mapper::truthy( get_post_meta( $id, Firm_Bridge_Matters::META_PRIV, true ) ) ) {
				continue;
			}
			$title = Firm_Bridge_Mapper::text( wp_strip_all_tags( $post->post_title ) );
			if ( '' !== $title ) {
				$out[] = $title;
			}
		}
		return $out;
	}

	/**
	 * Old notice ids go after KEEP_DAYS (the bridge retries for minutes, not months).
	 */
	public static function prune() {
		global $wpdb;
		$table = self::table();
		$wpdb->query( $wpdb->prepare( "DELETE FROM {$table} WHERE created_at < %d", time() - self::KEEP_DAYS * DAY_IN_SECONDS ) );
	}

	// --- preferences -----------------------------------------------------------------------

	/**
	 * @param int $user_id User id.
	 * @return string One of CHOICES.
	 */
	public static function preference( $user_id ) {
		$value = (string) get_user_meta( $user_id, self::META_PREF, true );
		return in_array( $value, self::CHOICES, true ) ? $value : '';
	}

	/**
	 * Whether the profile shows the section: people with a firm role.
	 *
	 * @param WP_User $user The user.
	 * @return bool
	 */
	private static function for_firm_person( WP_User $user ) {
		return null !== Firm_Bridge_Mapper::firm_role( (array) $user->roles );
	}

	/**
	 * The profile section (their own profile, or an administrator editing someone's).
	 *
	 * @param WP_User $user The user.
	 */
	public static function profile_section( $user ) {
		if ( ! $user instanceof WP_User || ! self::for_firm_person( $user ) || ! current_user_can( 'edit_user', $user->ID ) ) {
			return;
		}
		$current = self::preference( (int) $user->ID );
		wp_nonce_field( self::NONCE, self::NONCE_FIELD );
		$labels = array(
			''    => __( 'After the firm’s delay', 'firm-bridge' ),
			'5'   => __( 'After 5 minutes', 'firm-bridge' ),
			'15'  => __( 'After 15 minutes', 'firm-bridge' ),
			'30'  => __( 'After 30 minutes', 'firm-bridge' ),
			'60'  => __( 'After 1 hour', 'firm-bridge' ),
			'120' => __( 'After 2 hours', 'firm-bridge' ),
			'240' => __( 'After 4 hours', 'firm-bridge' ),
			'480' => __( 'After 8 hours', 'firm-bridge' ),
			'off' => __( 'Never', 'firm-bridge' ),
		);
		?>
		<h2 id="firm-bridge-notices"><?php esc_html_e( 'Chat notifications', 'firm-bridge' ); ?></h2>
		<table class="form-table" role="presentation">
			<tr>
				<th><label for="firm_notice_delay"><?php esc_html_e( 'E-mail me about unread messages', 'firm-bridge' ); ?></label></th>
				<td>
					<select name="firm_notice_delay" id="firm_notice_delay">
						<?php foreach ( $labels as $value => $label ) : ?>
							<option value="<?php echo esc_attr( $value ); ?>" <?php selected( $current, $value ); ?>><?php echo esc_html( $label ); ?></option>
						<?php endforeach; ?>
					</select>
					<p class="description"><?php esc_html_e( 'One e-mail when a message has waited unread this long, however many came. It says only that there is something to read: never the message, who sent it or (unless the firm allows it for matters that are not privileged) the matter. Reading in the portal or in a chat app before then sends nothing.', 'firm-bridge' ); ?></p>
				</td>
			</tr>
		</table>
		<?php
	}

	/**
	 * Saves the choice (WordPress has checked its own nonce; ours is checked too).
	 *
	 * @param int $user_id User id.
	 */
	public static function save_profile( $user_id ) {
		if ( ! isset( $_POST[ self::NONCE_FIELD ], $_POST['firm_notice_delay'] ) ) {
			return;
		}
		if ( ! wp_verify_nonce( sanitize_text_field( wp_unslash( $_POST[ self::NONCE_FIELD ] ) ), self::NONCE ) ) {
			wp_die( esc_html__( 'The form has expired. Go back, reload the page and try again.', 'firm-bridge' ), 403 );
		}
		if ( ! current_user_can( 'edit_user', $user_id ) ) {
			wp_die( esc_html__( 'You may not change these notifications.', 'firm-bridge' ), 403 );
		}
		$value = sanitize_text_field( wp_unslash( $_POST['firm_notice_delay'] ) );
		if ( ! in_array( $value, self::CHOICES, true ) || $value === self::preference( $user_id ) ) {
			return;
		}
		update_user_meta( $user_id, self::META_PREF, $value );
		self::enqueue( (int) $user_id );
	}

	/**
	 * An outbox row with the person's choice, after their earlier rows (they name the person).
	 *
	 * @param int $user_id User id.
	 * @return int|null Row id, or null for someone the bridge does not know.
	 */
	public static function enqueue( $user_id ) {
		$user = get_userdata( $user_id );
		if ( ! $user || ! self::for_firm_person( $user ) ) {
			return null;
		}
		$pref = self::preference( $user_id );
		$body = array(
			'email'         => 'off' !== $pref,
			'delay_seconds' => ( '' === $pref || 'off' === $pref ) ? null : 60 * (int) $pref,
		);
		self::$written = true;
		return Firm_Bridge_Outbox::enqueue(
			self::OBJECT_TYPE,
			$user_id,
			'PUT',
			'/_firm/v1/people/' . (int) $user_id . '/notices',
			$body,
			array( (int) $user_id ),
			/* translators: %d: user id */
			sprintf( __( 'Notification preferences of user %d', 'firm-bridge' ), $user_id )
		);
	}

	/**
	 * Every person whose choice is not the default (for "Resync everything").
	 *
	 * @return int Rows written.
	 */
	public static function resync() {
		$rows = 0;
		foreach ( get_users( array( 'meta_key' => self::META_PREF, 'fields' => 'ID' ) ) as $id ) { // phpcs:ignore WordPress.DB.SlowDBQuery
			$rows += null === self::enqueue( (int) $id ) ? 0 : 1;
		}
		return $rows;
	}

	/**
	 * End of the request: what this request queued goes now (after the people's own rows).
	 */
	public static function shutdown() {
		if ( self::$written && ! wp_doing_cron() ) {
			Firm_Bridge_Sync::flush();
			Firm_Bridge_Outbox::schedule_next();
			Firm_Bridge_Outbox::deliver( Firm_Bridge_Sync::INLINE_BUDGET );
		}
		self::$written = false;
	}

	// --- the firm's setting: titles ------------------------------------------------------------

	/**
	 * "Name matters in notices" on the Settings screen (its own section).
	 */
	public static function register_setting() {
		register_setting(
			Firm_Bridge_Settings_Page::GROUP,
			self::TITLES,
			array(
				'type'              => 'boolean',
				'sanitize_callback' => 'rest_sanitize_boolean',
				'default'           => false,
			)
		);
		add_settings_section( 'firm_bridge_notices', __( 'E-mail notices', 'firm-bridge' ), array( __CLASS__, 'settings_section' ), Firm_Bridge_Admin::SETTINGS );
		add_settings_field( self::TITLES, __( 'Matter titles', 'firm-bridge' ), array( __CLASS__, 'titles_field' ), Firm_Bridge_Admin::SETTINGS, 'firm_bridge_notices', array( 'label_for' => self::TITLES ) );
	}

	/**
	 * Section text.
	 */
	public static function settings_section() {
		echo '<p>' . esc_html__( 'When a message waits unread past the delay the bridge is set to (people may choose another on their profile), its reader gets one e-mail that says only that there is something to read. The bridge calls this site at /wp-json/firm-bridge/v1/notices (its wordpress.notice_url).', 'firm-bridge' ) . '</p>';
	}

	/**
	 * The titles checkbox.
	 */
	public static function titles_field() {
		printf(
			'<label><input type="checkbox" id="%1$s" name="%1$s" value="1" %2$s /> %3$s</label>',
			esc_attr( self::TITLES ),
			checked( (bool) get_option( self::TITLES, false ), true, false ),
			esc_html__( 'Name the matter in the e-mail, for matters that are not privileged (a privileged matter is never named)', 'firm-bridge' )
		);
	}

	// --- unread counts -------------------------------------------------------------------------

	/**
	 * GET /unread: the logged-in person's count, nobody else's.
	 *
	 * @return WP_REST_Response|WP_Error
	 */
	public static function unread() {
		$uid   = get_current_user_id();
		$count = self::count_for( $uid );
		if ( null === $count ) {
			// The bridge could not say: an unknown count, not an error. The badge polls every
			// minute on every page; a 5xx would put an error in every visitor's console.
			$count = array(
				'unread' => null,
				'rooms'  => null,
			);
		}
		$no_store = 'no-store, no-cache, must-revalidate, max-age=0, private';
		$response = rest_ensure_response( $count );
		$response->header( 'Cache-Control', $no_store );
		// The REST server sends its own no-cache headers for logged-in requests after these.
		add_filter(
			'nocache_headers',
			static function ( $headers ) use ( $no_store ) {
				$headers['Cache-Control'] = $no_store;
				return $headers;
			}
		);
		return $response;
	}

	/**
	 * @param int $uid User id.
	 * @return array{unread:int, rooms:int}|null Null when the bridge could not say.
	 */
	public static function count_for( $uid ) {
		$mapped = Firm_Bridge_People::mapped( $uid );
		if ( null === $mapped || ! $mapped['body']['active'] ) {
			return array(
				'unread' => 0,
				'rooms'  => 0,
			);
		}
		$key    = 'firm_bridge_unread_' . (int) $uid;
		$cached = get_transient( $key );
		if ( is_array( $cached ) ) {
			return $cached;
		}
		$result = Firm_Bridge_Client::send( 'GET', '/_firm/v1/people/' . (int) $uid . '/unread', '', Firm_Bridge_Client::request_id(), min( 3, Firm_Bridge_Settings::timeout() ) );
		if ( 404 === $result['status'] ) {
			$count = array(
				'unread' => 0,
				'rooms'  => 0,
			);
		} elseif ( 200 === $result['status'] && is_array( $result['json'] ) && isset( $result['json']['unread'] ) ) {
			$count = array(
				'unread' => max( 0, (int) $result['json']['unread'] ),
				'rooms'  => max( 0, (int) ( $result['json']['rooms'] ?? 0 ) ),
			);
		} else {
			return null;
		}
		set_transient( $key, $count, self::UNREAD_TTL );
		return $count;
	}

	/**
	 * Whether the page shows the unread badge to this visitor.
	 *
	 * @return bool
	 */
	private static function shows_badge() {
		if ( ! is_user_logged_in() || ! Firm_Bridge_Settings::configured() ) {
			return false;
		}
		$user = wp_get_current_user();
		$role = Firm_Bridge_Mapper::firm_role( (array) $user->roles );
		return null !== $role && 'administrator' !== $role;
	}

	/**
	 * "Messages" in the admin bar, with the count filled in by assets/unread.js.
	 *
	 * @param WP_Admin_Bar $bar The admin bar.
	 */
	public static function admin_bar( $bar ) {
		if ( ! self::shows_badge() ) {
			return;
		}
		$page = Firm_Bridge_Settings::chat_page();
		$bar->add_node(
			array(
				'id'    => 'firm-chat-unread',
				'title' => esc_html__( 'Messages', 'firm-bridge' ) . ' <span class="firm-chat-unread count" hidden></span>',
				'href'  => $page ? get_permalink( $page ) : false,
				'meta'  => array( 'class' => 'firm-chat-messages' ),
			)
		);
	}

	/**
	 * The count beside the chat page in the site's menus.
	 *
	 * @param array $items Menu items.
	 * @return array
	 */
	public static function menu_badge( $items ) {
		$page = Firm_Bridge_Settings::chat_page();
		if ( ! $page || ! self::shows_badge() ) {
			return $items;
		}
		foreach ( $items as $item ) {
			if ( 'post_type' === $item->type && (int) $item->object_id === $page ) {
				$item->title .= ' <span class="firm-chat-unread" hidden></span>';
			}
		}
		return $items;
	}

	/**
	 * The small script that fills every .firm-chat-unread (the widget does it on the chat page).
	 */
	public static function enqueue_script() {
		if ( ! self::shows_badge() ) {
			return;
		}
		wp_enqueue_script( 'firm-bridge-unread', plugins_url( 'assets/unread.js', FIRM_BRIDGE_FILE ), array(), FIRM_BRIDGE_VERSION, true );
		// Where to ask, as attributes rather than an inline script (a strict CSP stays happy).
		$footer = is_admin() ? 'admin_footer' : 'wp_footer';
		add_action( $footer, array( __CLASS__, 'config_element' ), 1 );
	}

	/**
	 * The script's settings: the route and the REST nonce of this session.
	 */
	public static function config_element() {
		printf(
			'<span id="firm-bridge-unread" hidden data-url="%s" data-nonce="%s"></span>',
			esc_url( rest_url( Firm_Bridge_Rest::NS . self::UNREAD_ROUTE ) ),
			esc_attr( wp_create_nonce( 'wp_rest' ) )
		);
	}
}
