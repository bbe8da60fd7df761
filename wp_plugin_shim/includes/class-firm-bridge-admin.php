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
		foreach ( array( 'save_policy', 'load_policy', 'resync', 'deliver', 'resend' ) as $action ) {
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
		add_submenu_page( self::SLUG, __( 'Restrictions', 'firm-bridge' ), __( 'Restrictions', 'firm-bridge' ), Firm_Bridge_Roles::MANAGE, self::RESTRICTIONS, array( __CLASS__, 'restrictions_page' ) );
	}

	// --- shared ----------------------------------------------------------------------------

	/**
	 * Capability first (a nonce proves intent, not permission), then the nonce.
	 *
	 * @param string $nonce_action Nonce action.
	 */
	private static function guard( $nonce_action ) {
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
	private static function back( $page, $notice, $detail = null ) {
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
	private static function notice() {
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
	 * @param string $class  Button class.
	 */
	public static function button( $action, $label, array $fields, $nonce, $class = 'button' ) {
		echo '<form method="post" action="' . esc_url( admin_url( 'admin-post.php' ) ) . '" style="display:inline">';
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
		$status = isset( $_GET['status'] ) ? sanitize_key( $_GET['status'] ) : ''; // phpcs:ignore WordPress.Security.NonceVerification
		if ( ! in_array( $status, array( 'pending', 'delivered', 'failed', 'superseded' ), true ) ) {
			$status = '';
		}
		$rows = Firm_Bridge_Outbox::rows( '' === $status ? null : $status, 200 );
		echo '<div class="wrap"><h1>' . esc_html__( 'Firm Bridge: Outbox', 'firm-bridge' ) . '</h1>';
		self::notice();
		echo '<ul class="subsubsub">';
		$link = static function ( $key, $label, $count ) use ( $status ) {
			$url = add_query_arg(
				array(
					'page'   => self::SLUG,
					'status' => $key,
				),
				admin_url( 'admin.php' )
			);
			printf( '<li><a href="%s"%s>%s <span class="count">(%d)</span></a> | </li>', esc_url( $url ), $key === $status ? ' class="current"' : '', esc_html( $label ), (int) $count );
		};
		$link( 'pending', __( 'Pending', 'firm-bridge' ), Firm_Bridge_Outbox::count( 'pending' ) );
		$link( 'failed', __( 'Failed', 'firm-bridge' ), Firm_Bridge_Outbox::count( 'failed' ) );
		$link( 'delivered', __( 'Delivered', 'firm-bridge' ), Firm_Bridge_Outbox::count( 'delivered' ) );
		$link( 'superseded', __( 'Superseded', 'firm-bridge' ), Firm_Bridge_Outbox::count( 'superseded' ) );
		echo '</ul><p style="clear:both">';
		self::button( 'firm_bridge_deliver', __( 'Deliver now', 'firm-bridge' ), array(), 'firm_bridge_deliver' );
		self::button( 'firm_bridge_resync', __( 'Resync everything', 'firm-bridge' ), array(), 'firm_bridge_resync', 'button button-primary' );
		echo '</p><table class="widefat striped"><thead><tr>';
		foreach ( array( '#', __( 'Object', 'firm-bridge' ), __( 'Request', 'firm-bridge' ), __( 'Status', 'firm-bridge' ), __( 'Attempts', 'firm-bridge' ), __( 'Next attempt', 'firm-bridge' ), __( 'Last answer', 'firm-bridge' ), __( 'Queued', 'firm-bridge' ), '' ) as $h ) {
			echo '<th>' . esc_html( $h ) . '</th>';
		}
		echo '</tr></thead><tbody>';
		$when = static function ( $ts ) {
			return $ts ? wp_date( 'Y-m-d H:i:s', (int) $ts ) : '—';
		};
		foreach ( $rows as $row ) {
			echo '<tr>';
			echo '<td>' . esc_html( $row['id'] ) . '</td>';
			echo '<td>' . esc_html( $row['summary'] ) . '</td>';
			echo '<td><code>' . esc_html( $row['method'] . ' ' . $row['path'] ) . '</code></td>';
			echo '<td>' . esc_html( $row['status'] ) . '</td>';
			echo '<td>' . esc_html( $row['attempts'] ) . '</td>';
			echo '<td>' . esc_html( 'pending' === $row['status'] ? $when( $row['next_attempt_at'] ) : '—' ) . '</td>';
			echo '<td>' . esc_html( (string) $row['last_error'] ) . '</td>';
			echo '<td>' . esc_html( $when( $row['created_at'] ) ) . '</td><td>';
			if ( 'failed' === $row['status'] ) {
				self::button( 'firm_bridge_resend', __( 'Send current state again', 'firm-bridge' ), array( 'row' => $row['id'] ), 'firm_bridge_resend_' . $row['id'] );
			}
			echo '</td></tr>';
		}
		if ( ! $rows ) {
			echo '<tr><td colspan="9">' . esc_html__( 'Nothing here.', 'firm-bridge' ) . '</td></tr>';
		}
		echo '</tbody></table></div>';
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
		self::back( self::SLUG, 'resync-queued', sprintf( '%d requests queued.', $rows ) );
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

	// --- restrictions ----------------------------------------------------------------------

	/**
	 * The Restrictions screen: the role table as JSON, sent to the bridge on save.
	 */
	public static function restrictions_page() {
		if ( ! current_user_can( Firm_Bridge_Roles::MANAGE ) ) {
			wp_die( esc_html__( 'You may not change the Firm Bridge.', 'firm-bridge' ), 403 );
		}
		$draft  = get_transient( 'firm_bridge_policy_draft_' . get_current_user_id() );
		$policy = Firm_Bridge_Settings::policy();
		$text   = is_string( $draft ) ? $draft : ( null === $policy ? '' : Firm_Bridge_Policy_Doc::pretty( $policy ) );
		$row    = Firm_Bridge_Outbox::latest( 'policy', 0 );
		echo '<div class="wrap"><h1>' . esc_html__( 'Firm Bridge: Restrictions', 'firm-bridge' ) . '</h1>';
		self::notice();
		echo '<p>' . esc_html__( 'The firm\'s role table: each role\'s power level in matter rooms, which matter rooms it joins, and with whom it may hold conversations. The bridge checks the table and names any problem; the homeserver enforces it.', 'firm-bridge' ) . '</p>';
		if ( $row ) {
			echo '<p>' . esc_html( sprintf( /* translators: 1: status, 2: answer */ __( 'Last sent: %1$s %2$s', 'firm-bridge' ), $row['status'], (string) $row['last_error'] ) ) . '</p>';
		}
		?>
		<form method="post" action="<?php echo esc_url( admin_url( 'admin-post.php' ) ); ?>">
			<input type="hidden" name="action" value="firm_bridge_save_policy" />
			<?php wp_nonce_field( 'firm_bridge_save_policy' ); ?>
			<textarea name="firm_bridge_policy" rows="30" class="large-text code" spellcheck="false"><?php echo esc_textarea( $text ); ?></textarea>
			<?php submit_button( __( 'Save and send to the bridge', 'firm-bridge' ) ); ?>
		</form>
		<?php
		self::button( 'firm_bridge_load_policy', __( 'Load the table the bridge uses now', 'firm-bridge' ), array(), 'firm_bridge_load_policy' );
		echo '</div>';
	}

	/**
	 * Saves the role table once it passes the bridge's rules, and sends it at once. The firm's
	 * table changes only when the bridge took it or could not be asked: a table the bridge
	 * refuses is not kept, and what was typed stays in the form to be corrected.
	 */
	public static function handle_save_policy() {
		self::guard( 'firm_bridge_save_policy' );
		$text   = isset( $_POST['firm_bridge_policy'] ) ? (string) wp_unslash( $_POST['firm_bridge_policy'] ) : ''; // phpcs:ignore WordPress.Security.ValidatedSanitizedInput.InputNotSanitized -- parsed as JSON, never printed unescaped.
		$parsed = Firm_Bridge_Policy_Doc::parse( $text );
		if ( null === $parsed['policy'] ) {
			self::keep_policy_draft( $text );
			self::back( self::RESTRICTIONS, 'policy-invalid', $parsed['error'] );
		}
		self::send_policy( $parsed['policy'], $text );
	}

	/**
	 * Sends a checked table now and keeps it as the firm's unless the bridge refused it.
	 *
	 * @param array  $policy Checked table.
	 * @param string $draft  What the form showed, kept when refused.
	 */
	private static function send_policy( array $policy, $draft ) {
		$id = Firm_Bridge_Sync::enqueue_policy( $policy );
		Firm_Bridge_Outbox::deliver( 10 );
		$row = Firm_Bridge_Outbox::row( (int) $id );
		if ( $row && 'failed' === $row['status'] ) {
			self::keep_policy_draft( $draft );
			self::back( self::RESTRICTIONS, 'policy-refused', (string) $row['last_error'] );
		}
		Firm_Bridge_Settings::set_policy( $policy );
		delete_transient( 'firm_bridge_policy_draft_' . get_current_user_id() );
		if ( $row && 'delivered' === $row['status'] ) {
			self::back( self::RESTRICTIONS, 'policy-saved' );
		}
		self::back( self::RESTRICTIONS, 'policy-queued', $row && $row['last_error'] ? (string) $row['last_error'] : null );
	}

	/**
	 * @param string $text What the form held, shown again for this user.
	 */
	private static function keep_policy_draft( $text ) {
		set_transient( 'firm_bridge_policy_draft_' . get_current_user_id(), $text, 600 );
	}

	/** Loads the bridge's current table into the editor (not sent). */
	public static function handle_load_policy() {
		self::guard( 'firm_bridge_load_policy' );
		$result = Firm_Bridge_Client::send( 'GET', '/_firm/v1/policy', '', Firm_Bridge_Client::request_id() );
		if ( 200 !== $result['status'] || ! is_array( $result['json'] ) || ! isset( $result['json']['policy'] ) || ! is_array( $result['json']['policy'] ) ) {
			self::back( self::RESTRICTIONS, 'policy-unloaded', (string) $result['error'] );
		}
		set_transient( 'firm_bridge_policy_draft_' . get_current_user_id(), Firm_Bridge_Policy_Doc::pretty( $result['json']['policy'] ), 600 );
		self::back( self::RESTRICTIONS, 'policy-loaded' );
	}
}
