<?php
/**
 * wp-admin screens: Outbox, Settings, Restrictions. Every form posts to admin-post.php with a
 * nonce, and every handler checks the capability first, then the nonce.
 *
 * @package Firm_Bridge
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * Admin screens and form handlers.
 */
final class Firm_Bridge_Admin {

	const SLUG         = 'firm-bridge';
	const SETTINGS     = 'firm-bridge-settings';
	const RESTRICTIONS = 'firm-bridge-restrictions';

	/** Fixed notice texts and their kind, chosen by code (nothing from the request is echoed). */
	const NOTICES = array(
		'policy-saved'        => array( 'success', 'The role table was saved, and the bridge uses it now.' ),
		'policy-queued'       => array( 'warning', 'The role table was saved. The bridge has not answered yet; it gets the table as soon as it does.' ),
		'policy-refused'      => array( 'error', 'The bridge refused the role table, so it was not saved; the firm\'s table is unchanged.' ),
		'policy-invalid'      => array( 'error', 'The role table was not saved; the firm\'s table is unchanged.' ),
		'policy-loaded'       => array( 'success', 'Loaded the role table the bridge uses now. Review it and save to send changes.' ),
		'policy-unloaded'     => array( 'error', 'The bridge did not give its role table.' ),
		'resync-queued'       => array( 'success', 'Everything was queued for the bridge.' ),
		'delivered'           => array( 'success', 'Everything that was waiting has been delivered.' ),
		'delivered-none'      => array( 'success', 'Nothing was waiting to be delivered.' ),
		'delivered-failed'    => array( 'error', 'The bridge refused some requests: they are listed under Failed, with its answer.' ),
		'deliver-unreachable' => array( 'error', 'The bridge did not answer, so nothing more was sent.' ),
		'deliver-partial'     => array( 'warning', 'Some requests are still waiting; delivery continues in the background.' ),
		'deliver-busy'        => array( 'warning', 'Another delivery is under way; it sends these requests too, in order.' ),
		'not-configured'      => array( 'error', 'Set the bridge URL and shared secret under Settings first.' ),
		'resent'              => array( 'success', 'The object\'s current state was queued again.' ),
		'not-resent'          => array( 'error', 'Only failed rows can be sent again.' ),
	);

	/**
	 * Hooks.
	 */
	public static function hooks() {
		add_action( 'admin_menu', array( __CLASS__, 'menu' ) );
		add_action( 'admin_enqueue_scripts', array( __CLASS__, 'assets' ) );
		foreach ( array( 'resync', 'deliver', 'resend' ) as $action ) {
			add_action( 'admin_post_firm_bridge_' . $action, array( __CLASS__, 'handle_' . $action ) );
		}
	}

	/**
	 * Menu entries.
	 */
	public static function menu() {
		add_menu_page( __( 'Firm Bridge', 'firm-bridge' ), __( 'Firm Bridge', 'firm-bridge' ), Firm_Bridge_Roles::MANAGE, self::SLUG, array( __CLASS__, 'outbox_page' ), 'dashicons-shield' );
		add_submenu_page( self::SLUG, __( 'Outbox', 'firm-bridge' ), __( 'Outbox', 'firm-bridge' ), Firm_Bridge_Roles::MANAGE, self::SLUG, array( __CLASS__, 'outbox_page' ) );
		add_submenu_page( self::SLUG, __( 'Settings', 'firm-bridge' ), __( 'Settings', 'firm-bridge' ), Firm_Bridge_Roles::MANAGE, self::SETTINGS, array( 'Firm_Bridge_Settings_Page', 'page' ) );
		add_submenu_page( self::SLUG, __( 'Restrictions', 'firm-bridge' ), __( 'Restrictions', 'firm-bridge' ), Firm_Bridge_Roles::MANAGE, self::RESTRICTIONS, array( 'Firm_Bridge_Restrictions_Page', 'page' ) );
	}

	/**
	 * The plugin's styles and scripts, on its own screens and the core screens it adds to.
	 *
	 * @param string $hook Admin page.
	 */
	public static function assets( $hook ) {
		$screen = function_exists( 'get_current_screen' ) ? get_current_screen() : null;
		$ours   = false !== strpos( (string) $hook, self::SLUG )
			|| in_array( $hook, array( 'users.php', 'user-edit.php', 'profile.php', 'user-new.php', 'tools.php', 'erase-personal-data.php' ), true )
			|| ( $screen && Firm_Bridge_Matters::POST_TYPE === $screen->post_type );
		if ( $ours ) {
			wp_enqueue_style( 'firm-bridge-admin', plugins_url( 'assets/admin.css', FIRM_BRIDGE_FILE ), array(), FIRM_BRIDGE_VERSION );
			wp_enqueue_script( 'firm-bridge-confirm', plugins_url( 'assets/confirm.js', FIRM_BRIDGE_FILE ), array(), FIRM_BRIDGE_VERSION, true );
		}
		$questions = self::questions( $hook, $screen );
		if ( $questions ) {
			wp_localize_script( 'firm-bridge-confirm', 'firmBridgeConfirm', $questions );
		}
		if ( in_array( $hook, array( 'user-edit.php', 'user-new.php' ), true ) ) {
			wp_enqueue_script( 'firm-bridge-people', plugins_url( 'assets/people.js', FIRM_BRIDGE_FILE ), array(), FIRM_BRIDGE_VERSION, true );
		}
	}

	/**
	 * Questions asked before core's own controls do what cannot be undone on this screen.
	 *
	 * @param string         $hook   Admin page.
	 * @param WP_Screen|null $screen Screen.
	 * @return array array{clicks?: array<string,string>, bulk?: array<string,string>}
	 */
	private static function questions( $hook, $screen ) {
		if ( 'erase-personal-data.php' === $hook ) {
			return array(
				'clicks' => array(
					'.remove-personal-data-handle' => __( 'Erase this person\'s personal data? If they have a secure chat account, it is closed for good: their sessions end, they leave every room, and the name and e-mail address the chat bridge holds are replaced. Messages already sent stay readable to the others in those conversations. This cannot be undone.', 'firm-bridge' ),
				),
			);
		}
		if ( $screen && Firm_Bridge_Matters::POST_TYPE === $screen->post_type ) {
			$closes = __( 'Its chat room closes: everyone in it can still read it, and nobody can write in it any more.', 'firm-bridge' );
			return array(
				'clicks' => array(
					/* translators: %s: what happens to the room */
					'a.submitdelete[href*="action=trash"]'  => sprintf( __( 'Move this matter to the trash? %s', 'firm-bridge' ), $closes ),
					'a.submitdelete[href*="action=delete"]' => __( 'Delete this matter permanently? Its chat room stays closed and readable until the firm\'s retention period ends; WordPress keeps nothing of the matter.', 'firm-bridge' ),
				),
				'bulk'   => array(
					'trash'  => __( 'Move the selected matters to the trash? Their chat rooms close: everyone in them can still read them, and nobody can write in them any more.', 'firm-bridge' ),
					'delete' => __( 'Delete the selected matters permanently? Their chat rooms stay closed and readable until the firm\'s retention period ends; WordPress keeps nothing of the matters.', 'firm-bridge' ),
				),
			);
		}
		return array();
	}

	// --- shared ----------------------------------------------------------------------------

	/**
	 * Capability first (a nonce proves intent, not permission), then the nonce.
	 *
	 * @param string $nonce_action Nonce action.
	 */
	public static function guard( $nonce_action ) {
		if ( ! current_user_can( Firm_Bridge_Roles::MANAGE ) ) {
			wp_die( esc_html__( 'You may not change the Firm Bridge.', 'firm-bridge' ), esc_html__( 'Forbidden', 'firm-bridge' ), array( 'response' => 403 ) );
		}
		check_admin_referer( $nonce_action );
	}

	/**
	 * @param string      $page   Admin page slug.
	 * @param string      $notice Notice code.
	 * @param string|null $detail Extra text for this user's next page view.
	 */
	public static function back( $page, $notice, $detail = null ) {
		if ( null !== $detail ) {
			set_transient( 'firm_bridge_detail_' . get_current_user_id(), $detail, 60 );
		}
		wp_safe_redirect(
			add_query_arg(
				array(
					'page'               => $page,
					'firm_bridge_notice' => $notice,
				),
				admin_url( 'admin.php' )
			)
		);
		exit;
	}

	/**
	 * Prints the notice named in the URL, and this user's detail text.
	 */
	public static function notice() {
		$code = isset( $_GET['firm_bridge_notice'] ) ? sanitize_key( $_GET['firm_bridge_notice'] ) : ''; // phpcs:ignore WordPress.Security.NonceVerification
		if ( ! isset( self::NOTICES[ $code ] ) ) {
			return;
		}
		$detail = get_transient( 'firm_bridge_detail_' . get_current_user_id() );
		delete_transient( 'firm_bridge_detail_' . get_current_user_id() );
		list( $kind, $text ) = self::NOTICES[ $code ];
		printf( '<div class="notice notice-%s"><p>%s', esc_attr( $kind ), esc_html( $text ) );
		if ( is_string( $detail ) && '' !== $detail ) {
			echo ' ' . esc_html( $detail );
		}
		echo '</p></div>';
	}

	/**
	 * @param string $action Form action (admin-post).
	 * @param string $label  Button label.
	 * @param array  $fields Hidden fields.
	 * @param string $nonce  Nonce action.
	 * @param string $class   Button class.
	 * @param string $confirm A question to confirm before the form is sent ('' for none).
	 */
	public static function button( $action, $label, array $fields, $nonce, $class = 'button', $confirm = '' ) {
		echo '<form method="post" action="' . esc_url( admin_url( 'admin-post.php' ) ) . '" class="firm-bridge-inline-form"' . ( '' === $confirm ? '' : ' data-firm-confirm="' . esc_attr( $confirm ) . '"' ) . '>';
		echo '<input type="hidden" name="action" value="' . esc_attr( $action ) . '" />';
		foreach ( $fields as $k => $v ) {
			echo '<input type="hidden" name="' . esc_attr( $k ) . '" value="' . esc_attr( (string) $v ) . '" />';
		}
		wp_nonce_field( $nonce );
		echo '<button type="submit" class="' . esc_attr( $class ) . '">' . esc_html( $label ) . '</button></form> ';
	}

	// --- outbox ----------------------------------------------------------------------------

	/**
	 * The Outbox screen: every request for the bridge and what became of it.
	 */
	public static function outbox_page() {
		if ( ! current_user_can( Firm_Bridge_Roles::MANAGE ) ) {
			wp_die( esc_html__( 'You may not see the Firm Bridge outbox.', 'firm-bridge' ), 403 );
		}
		// WordPress's list table is for wp-admin screens only: loaded when this one is shown.
		require_once FIRM_BRIDGE_DIR . '/includes/class-firm-bridge-outbox-table.php';
		$table = new Firm_Bridge_Outbox_Table();
		$table->prepare_items();
		echo '<div class="wrap"><h1 class="wp-heading-inline">' . esc_html__( 'Firm Bridge: Outbox', 'firm-bridge' ) . '</h1><hr class="wp-header-end" />';
		self::notice();
		echo '<p>' . esc_html__( 'Every change WordPress sends to the chat bridge, in order, and what became of it. Waiting requests are retried automatically; refused ones are kept here with the bridge\'s answer.', 'firm-bridge' ) . '</p>';
		$table->views();
		echo '<p class="firm-bridge-outbox-actions">';
		self::button( 'firm_bridge_deliver', __( 'Deliver now', 'firm-bridge' ), array(), 'firm_bridge_deliver' );
		self::button(
			'firm_bridge_resync',
			__( 'Resync everything', 'firm-bridge' ),
			array(),
			'firm_bridge_resync',
			'button button-primary',
			sprintf(
				/* translators: 1: people, 2: matters */
				__( 'Resync everything? Every person (%1$d), every matter (%2$d) and the role table are sent to the bridge again. The bridge changes only what differs from WordPress, so it repairs a bridge that lost its data; for a large firm the requests take a while to go out.', 'firm-bridge' ),
				count( Firm_Bridge_Sync::resync_people() ),
				count( Firm_Bridge_Sync::resync_matters() )
			)
		);
		echo '</p><form method="get">';
		echo '<input type="hidden" name="page" value="' . esc_attr( self::SLUG ) . '" />';
		$table->display();
		echo '</form>';
		$table->resend_forms();
		echo '</div>';
	}

	/** Deliver now: every pending row, in order, whatever its retry time. */
	public static function handle_deliver() {
		self::guard( 'firm_bridge_deliver' );
		if ( ! Firm_Bridge_Settings::configured() ) {
			self::back( self::SLUG, 'not-configured' );
		}
		$stats = Firm_Bridge_Outbox::deliver( 20, true );
		list( $code, $detail ) = self::delivery_result( $stats );
		self::back( self::SLUG, $code, $detail );
	}

	/**
	 * What a Deliver now run did, in the notice's words.
	 *
	 * @param array $stats Firm_Bridge_Outbox::deliver() counters.
	 * @return array array{0:string, 1:string} Notice code and detail.
	 */
	public static function delivery_result( array $stats ) {
		/* translators: 1: requests delivered, 2: requests still waiting */
		$counts = sprintf( __( '%1$d delivered, %2$d waiting.', 'firm-bridge' ), $stats['delivered'], $stats['pending'] );
		if ( $stats['busy'] ) {
			return array( 'deliver-busy', '' );
		}
		if ( null !== $stats['unreachable'] ) {
			/* translators: 1: the bridge's answer or why none came, 2: counts */
			return array( 'deliver-unreachable', sprintf( __( '%1$s. %2$s Waiting requests are retried automatically.', 'firm-bridge' ), $stats['unreachable'], $counts ) );
		}
		if ( $stats['failed'] > 0 ) {
			/* translators: 1: counts, 2: requests refused */
			return array( 'delivered-failed', sprintf( __( '%1$s %2$d refused.', 'firm-bridge' ), $counts, $stats['failed'] ) );
		}
		if ( $stats['pending'] > 0 ) {
			return array( 'deliver-partial', $counts );
		}
		if ( 0 === $stats['sent'] ) {
			return array( 'delivered-none', '' );
		}
		/* translators: %d: requests delivered */
		return array( 'delivered', sprintf( _n( '%d delivered.', '%d delivered.', $stats['delivered'], 'firm-bridge' ), $stats['delivered'] ) );
	}

	/** Resync everything. */
	public static function handle_resync() {
		self::guard( 'firm_bridge_resync' );
		$rows = Firm_Bridge_Sync::resync();
		/* translators: %d: requests queued */
		self::back( self::SLUG, 'resync-queued', sprintf( _n( '%d request queued; it goes out in the background (see Pending).', '%d requests queued; they go out in the background, in order (see Pending).', $rows, 'firm-bridge' ), $rows ) );
	}

	/** Send a failed object's current state again. */
	public static function handle_resend() {
		$row = isset( $_POST['row'] ) ? absint( $_POST['row'] ) : 0;
		self::guard( 'firm_bridge_resend_' . $row );
		$new = Firm_Bridge_Outbox::resend( $row );
		self::back( self::SLUG, null === $new ? 'not-resent' : 'resent' );
	}

	// --- settings (the screen is Firm_Bridge_Settings_Page) ----------------------------------

	/**
	 * Whether a URL is plain http to a host other than this machine.
	 *
	 * @param string $url URL.
	 * @return bool
	 */
	public static function plain_http_elsewhere( $url ) {
		if ( 'http' !== wp_parse_url( $url, PHP_URL_SCHEME ) ) {
			return false;
		}
		$host = strtolower( trim( (string) wp_parse_url( $url, PHP_URL_HOST ), '[]' ) );
		return ! ( 'localhost' === $host || '::1' === $host || 0 === strpos( $host, '127.' ) );
	}
}
