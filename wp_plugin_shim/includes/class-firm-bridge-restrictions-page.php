<?php
/**
 * Firm Bridge → Restrictions: the firm's role table as a form an office manager can use (a grid
 * of roles against the conversation rules, each role's matter rooms and power level, the group
 * size, every rule explained in plain words), checked by the bridge's rules before anything is
 * saved and sent at once. The JSON stays available, to export and to import.
 *
 * @package Firm_Bridge
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * The Restrictions screen and its handlers.
 */
final class Firm_Bridge_Restrictions_Page {

	const SAVE   = 'firm_bridge_save_policy';
	const LOAD   = 'firm_bridge_load_policy';
	const EXPORT = 'firm_bridge_export_policy';

	/**
	 * Hooks.
	 */
	public static function hooks() {
		add_action( 'admin_post_' . self::SAVE, array( __CLASS__, 'handle_save' ) );
		add_action( 'admin_post_' . self::LOAD, array( __CLASS__, 'handle_load' ) );
		add_action( 'admin_post_' . self::EXPORT, array( __CLASS__, 'handle_export' ) );
	}

	/** @return array<string,string> Role => its name on the screen. */
	public static function role_labels() {
		return array(
			'partner'       => __( 'Partner', 'firm-bridge' ),
			'associate'     => __( 'Associate', 'firm-bridge' ),
			'paralegal'     => __( 'Paralegal', 'firm-bridge' ),
			'assistant'     => __( 'Legal assistant', 'firm-bridge' ),
			'client'        => __( 'Client', 'firm-bridge' ),
			'administrator' => __( 'Administrator', 'firm-bridge' ),
		);
	}

	/** @return array<string,string[]> Rule => array{0: column label, 1: what it means}. */
	public static function rule_labels() {
		return array(
			'firm_members'                    => array( __( 'Everyone at the firm', 'firm-bridge' ), __( 'Every partner, associate, paralegal and legal assistant.', 'firm-bridge' ) ),
			'assigned_clients'                => array( __( 'Their clients', 'firm-bridge' ), __( 'The clients of the matters they are assigned to, and clients who have them as their attorney.', 'firm-bridge' ) ),
			'assigned_clients_non_privileged' => array( __( 'Their clients, non-privileged matters only', 'firm-bridge' ), __( 'The same, but only through matters that are not privileged.', 'firm-bridge' ) ),
			'supervising_partner'             => array( __( 'Their supervising partner', 'firm-bridge' ), __( 'The partner set as their supervisor on their profile.', 'firm-bridge' ) ),
			'assigned_attorneys'              => array( __( 'Their attorneys', 'firm-bridge' ), __( 'The partners and associates they are assigned to, on their profile or through a matter they share.', 'firm-bridge' ) ),
			'clients_for_scheduling'          => array( __( 'Any client, to schedule', 'firm-bridge' ), __( 'Any client, in a conversation marked for arranging appointments.', 'firm-bridge' ) ),
		);
	}

	/** @return array<string,string> Matter rooms choice => its name on the screen. */
	public static function room_labels() {
		return array(
			'assigned'                => __( 'The matters they are assigned to', 'firm-bridge' ),
			'assigned_non_privileged' => __( 'Their assigned matters that are not privileged', 'firm-bridge' ),
			'none'                    => __( 'None', 'firm-bridge' ),
		);
	}

	// --- what is shown -------------------------------------------------------------------------

	/**
	 * This user's unsaved table: array{kind: 'grid'|'json', text: string}, or null.
	 *
	 * @return array|null
	 */
	private static function draft() {
		$draft = get_transient( 'firm_bridge_policy_draft_' . get_current_user_id() );
		return is_array( $draft ) && isset( $draft['kind'], $draft['text'] ) ? $draft : null;
	}

	/**
	 * @param string $kind 'grid' (a table built from the form) or 'json' (text as typed).
	 * @param string $text JSON.
	 */
	private static function keep_draft( $kind, $text ) {
		set_transient(
			'firm_bridge_policy_draft_' . get_current_user_id(),
			array(
				'kind' => $kind,
				'text' => $text,
			),
			600
		);
	}

	/**
	 * The table the grid shows: this user's draft, else the firm's, else the bridge's now.
	 *
	 * @return array array{0: ?array, 1: string} The table (null when none could be had) and where
	 *               it came from: draft, firm, bridge or none.
	 */
	private static function shown_table() {
		$draft = self::draft();
		if ( $draft && 'grid' === $draft['kind'] ) {
			$doc = json_decode( $draft['text'], true );
			if ( is_array( $doc ) ) {
				return array( $doc, 'draft' );
			}
		}
		$policy = Firm_Bridge_Settings::policy();
		if ( null !== $policy ) {
			return array( $policy, 'firm' );
		}
		$bridge = self::bridge_table( 3 );
		return null === $bridge ? array( null, 'none' ) : array( $bridge, 'bridge' );
	}

	/**
	 * @param int $timeout Seconds.
	 * @return array|null The table the bridge uses now.
	 */
	private static function bridge_table( $timeout ) {
		$result = Firm_Bridge_Client::send( 'GET', '/_firm/v1/policy', '', Firm_Bridge_Client::request_id(), min( $timeout, Firm_Bridge_Settings::timeout() ) );
		if ( 200 !== $result['status'] || ! is_array( $result['json'] ) || ! isset( $result['json']['policy'] ) || ! is_array( $result['json']['policy'] ) ) {
			return null;
		}
		return $result['json']['policy'];
	}

	/**
	 * The screen.
	 */
	public static function page() {
		if ( ! current_user_can( Firm_Bridge_Roles::MANAGE ) ) {
			wp_die( esc_html__( 'You may not change the Firm Bridge.', 'firm-bridge' ), 403 );
		}
		list( $table, $source ) = self::shown_table();
		$draft                  = self::draft();
		$invalid                = isset( $_GET['field'] ) ? sanitize_text_field( wp_unslash( $_GET['field'] ) ) : ''; // phpcs:ignore WordPress.Security.NonceVerification -- which field to mark, nothing more.
		echo '<div class="wrap firm-bridge-restrictions"><h1>' . esc_html__( 'Firm Bridge: Restrictions', 'firm-bridge' ) . '</h1>';
		Firm_Bridge_Admin::notice();
		self::last_sent();
		echo '<p>' . esc_html__( 'Who may talk with whom in secure chat, who joins which matter rooms, and each role\'s rank in them. The homeserver enforces this table for everyone, whatever app they use.', 'firm-bridge' ) . '</p>';
		if ( 'bridge' === $source ) {
			echo '<div class="notice notice-info inline"><p>' . esc_html__( 'This is the table the bridge uses now. WordPress has not saved one of its own yet: saving makes it the firm\'s.', 'firm-bridge' ) . '</p></div>';
		}
		if ( null === $table ) {
			echo '<div class="notice notice-error inline"><p>' . esc_html__( 'The bridge could not be asked for its table, and WordPress has none saved. Check Settings → Test connection, then load the bridge\'s table.', 'firm-bridge' ) . '</p></div>';
		} else {
			self::grid( $table, $invalid );
		}
		Firm_Bridge_Admin::button( self::LOAD, __( 'Load the table the bridge uses now', 'firm-bridge' ), array(), self::LOAD );
		self::json_section( null === $table ? '' : Firm_Bridge_Policy_Doc::pretty( $table ), $draft );
		echo '</div>';
	}

	/**
	 * The latest table sent, and what became of it.
	 */
	private static function last_sent() {
		$row = Firm_Bridge_Outbox::latest( 'policy', 0 );
		if ( ! $row ) {
			return;
		}
		$when = wp_date( get_option( 'date_format' ) . ' ' . get_option( 'time_format' ), (int) $row['created_at'] );
		if ( 'failed' === $row['status'] ) {
			/* translators: 1: date, 2: the bridge's answer */
			$text = sprintf( __( 'The bridge refused the table sent on %1$s: %2$s', 'firm-bridge' ), $when, (string) $row['last_error'] );
			$kind = 'error';
		} elseif ( 'pending' === $row['status'] ) {
			/* translators: %s: date */
			$text = sprintf( __( 'The table saved on %s is waiting for the bridge, which has not answered yet.', 'firm-bridge' ), $when );
			$kind = 'warning';
		} else {
			return;
		}
		printf( '<div class="notice notice-%s inline"><p>%s</p></div>', esc_attr( $kind ), esc_html( $text ) );
	}

	/**
	 * The grid: a row per role; matter rooms, power level, then a checkbox per rule.
	 *
	 * @param array  $table   The table shown.
	 * @param string $invalid The field the last save was refused for ("roles.client.power_level").
	 */
	private static function grid( array $table, $invalid ) {
		$roles = isset( $table['roles'] ) && is_array( $table['roles'] ) ? $table['roles'] : array();
		$rules = self::rule_labels();
		$bad   = static function ( $field ) use ( $invalid ) {
			return ( '' !== $invalid && ( $field === $invalid || 0 === strpos( $invalid, $field . '.' ) ) ) ? ' aria-invalid="true"' : '';
		};
		?>
		<form method="post" action="<?php echo esc_url( admin_url( 'admin-post.php' ) ); ?>" class="firm-bridge-grid-form">
			<input type="hidden" name="action" value="<?php echo esc_attr( self::SAVE ); ?>" />
			<?php wp_nonce_field( self::SAVE ); ?>
			<div class="firm-bridge-grid-scroll">
			<table class="widefat striped firm-bridge-grid">
				<caption class="screen-reader-text"><?php esc_html_e( 'The role table: for each role, its matter rooms, its power level and with whom it may talk', 'firm-bridge' ); ?></caption>
				<thead>
					<tr>
						<th scope="col" rowspan="2"><?php esc_html_e( 'Role', 'firm-bridge' ); ?></th>
						<th scope="col" rowspan="2"><?php esc_html_e( 'Matter rooms', 'firm-bridge' ); ?></th>
						<th scope="col" rowspan="2"><?php esc_html_e( 'Power level', 'firm-bridge' ); ?></th>
						<th scope="colgroup" colspan="<?php echo count( $rules ); ?>"><?php esc_html_e( 'May talk with', 'firm-bridge' ); ?></th>
					</tr>
					<tr>
						<?php foreach ( $rules as $rule => $label ) : ?>
							<th scope="col" id="<?php echo esc_attr( 'firm-rule-' . $rule ); ?>"><?php echo esc_html( $label[0] ); ?></th>
						<?php endforeach; ?>
					</tr>
				</thead>
				<tbody>
				<?php
				foreach ( self::role_labels() as $role => $role_label ) :
					$row   = isset( $roles[ $role ] ) && is_array( $roles[ $role ] ) ? $roles[ $role ] : array();
					$base  = 'firm_bridge_roles[' . $role . ']';
					$id    = 'firm-role-' . $role;
					$talks = isset( $row['conversations'] ) && is_array( $row['conversations'] ) ? $row['conversations'] : array();
					?>
					<tr>
						<th scope="row" id="<?php echo esc_attr( $id ); ?>"><?php echo esc_html( $role_label ); ?></th>
						<td>
							<label class="screen-reader-text" for="<?php echo esc_attr( $id . '-rooms' ); ?>"><?php echo esc_html( sprintf( /* translators: %s: role */ __( '%s: matter rooms', 'firm-bridge' ), $role_label ) ); ?></label>
							<select name="<?php echo esc_attr( $base . '[matter_rooms]' ); ?>" id="<?php echo esc_attr( $id . '-rooms' ); ?>"<?php echo $bad( "roles.$role.matter_rooms" ); // phpcs:ignore WordPress.Security.EscapeOutput -- a fixed attribute. ?>>
								<?php foreach ( self::room_labels() as $value => $label ) : ?>
									<option value="<?php echo esc_attr( $value ); ?>" <?php selected( ( $row['matter_rooms'] ?? '' ) === $value ); ?>><?php echo esc_html( $label ); ?></option>
								<?php endforeach; ?>
							</select>
						</td>
						<td>
							<label class="screen-reader-text" for="<?php echo esc_attr( $id . '-level' ); ?>"><?php echo esc_html( sprintf( /* translators: %s: role */ __( '%s: power level', 'firm-bridge' ), $role_label ) ); ?></label>
							<input type="number" class="small-text" min="0" max="<?php echo (int) Firm_Bridge_Policy_Doc::MAX_POWER_LEVEL; ?>" step="1" name="<?php echo esc_attr( $base . '[power_level]' ); ?>" id="<?php echo esc_attr( $id . '-level' ); ?>" value="<?php echo esc_attr( is_scalar( $row['power_level'] ?? '' ) ? (string) ( $row['power_level'] ?? '' ) : '' ); ?>"<?php echo $bad( "roles.$role.power_level" ); // phpcs:ignore WordPress.Security.EscapeOutput -- a fixed attribute. ?> />
						</td>
						<?php foreach ( $rules as $rule => $label ) : ?>
							<td>
								<input type="checkbox" name="<?php echo esc_attr( $base . '[conversations][]' ); ?>" value="<?php echo esc_attr( $rule ); ?>" id="<?php echo esc_attr( $id . '-' . $rule ); ?>" <?php checked( in_array( $rule, $talks, true ) ); ?> />
								<label class="screen-reader-text" for="<?php echo esc_attr( $id . '-' . $rule ); ?>"><?php echo esc_html( sprintf( /* translators: 1: role, 2: rule */ __( '%1$s may talk with: %2$s', 'firm-bridge' ), $role_label, $label[0] ) ); ?></label>
							</td>
						<?php endforeach; ?>
					</tr>
				<?php endforeach; ?>
				</tbody>
			</table>
			</div>
			<table class="form-table" role="presentation">
				<tr>
					<th scope="row"><label for="firm-bridge-group-size"><?php esc_html_e( 'Largest group conversation', 'firm-bridge' ); ?></label></th>
					<td>
						<input type="number" class="small-text" min="<?php echo (int) Firm_Bridge_Policy_Doc::MIN_GROUP_SIZE; ?>" max="<?php echo (int) Firm_Bridge_Policy_Doc::MAX_GROUP_SIZE; ?>" step="1" name="firm_bridge_max_group_size" id="firm-bridge-group-size" aria-describedby="firm-bridge-group-size-help" value="<?php echo esc_attr( is_scalar( $table['max_group_size'] ?? '' ) ? (string) ( $table['max_group_size'] ?? Firm_Bridge_Policy_Doc::DEFAULT_MAX_GROUP_SIZE ) : '' ); ?>"<?php echo $bad( 'max_group_size' ); // phpcs:ignore WordPress.Security.EscapeOutput -- a fixed attribute. ?> />
						<p class="description" id="firm-bridge-group-size-help"><?php esc_html_e( 'The most people, the one who starts it included, in a conversation outside matter rooms (2 to 100).', 'firm-bridge' ); ?></p>
					</td>
				</tr>
			</table>
			<?php submit_button( __( 'Save and send to the bridge', 'firm-bridge' ) ); ?>
		</form>
		<h2><?php esc_html_e( 'What the table means', 'firm-bridge' ); ?></h2>
		<p><?php esc_html_e( 'Two people may hold a conversation outside matter rooms when the ticks of either of them admit the other. A role with nothing ticked talks with no one at all, whatever the other roles allow. In a group, every two people must be allowed.', 'firm-bridge' ); ?></p>
		<dl class="firm-bridge-rules">
			<?php foreach ( $rules as $rule => $label ) : ?>
				<dt><?php echo esc_html( $label[0] ); ?></dt>
				<dd><?php echo esc_html( $label[1] ); ?></dd>
			<?php endforeach; ?>
			<dt><?php esc_html_e( 'Matter rooms', 'firm-bridge' ); ?></dt>
			<dd><?php esc_html_e( 'Which matters\' rooms people of the role are put in: the matters they are assigned to, only those that are not privileged (paralegals, by default), or none.', 'firm-bridge' ); ?></dd>
			<dt><?php esc_html_e( 'Power level', 'firm-bridge' ); ?></dt>
			<dd><?php esc_html_e( 'Their rank in matter rooms, from 0 to 99; apps show higher levels first. Only the bridge (level 100) changes a room, invites or removes people, whatever anyone\'s level.', 'firm-bridge' ); ?></dd>
		</dl>
		<?php
	}

	/**
	 * Export and import as JSON.
	 *
	 * @param string     $pretty The shown table as JSON.
	 * @param array|null $draft  This user's draft.
	 */
	private static function json_section( $pretty, $draft ) {
		$text = ( $draft && 'json' === $draft['kind'] ) ? $draft['text'] : $pretty;
		?>
		<h2 id="firm-bridge-json"><?php esc_html_e( 'Export or import as JSON', 'firm-bridge' ); ?></h2>
		<p><?php esc_html_e( 'The same table as the bridge\'s configuration writes it (config/policy.yaml), for copying to another site or keeping a record.', 'firm-bridge' ); ?>
			<a href="<?php echo esc_url( wp_nonce_url( admin_url( 'admin-post.php?action=' . self::EXPORT ), self::EXPORT ) ); ?>"><?php esc_html_e( 'Download as a file', 'firm-bridge' ); ?></a></p>
		<form method="post" action="<?php echo esc_url( admin_url( 'admin-post.php' ) ); ?>">
			<input type="hidden" name="action" value="<?php echo esc_attr( self::SAVE ); ?>" />
			<?php wp_nonce_field( self::SAVE ); ?>
			<p><label for="firm-bridge-policy-json"><?php esc_html_e( 'The role table as JSON', 'firm-bridge' ); ?></label></p>
			<textarea name="firm_bridge_policy" id="firm-bridge-policy-json" rows="20" class="large-text code" spellcheck="false"><?php echo esc_textarea( $text ); ?></textarea>
			<?php submit_button( __( 'Import and send to the bridge', 'firm-bridge' ), 'secondary' ); ?>
		</form>
		<?php
	}

	// --- handlers --------------------------------------------------------------------------

	/**
	 * Saves the grid, or an imported JSON table.
	 */
	public static function handle_save() {
		Firm_Bridge_Admin::guard( self::SAVE );
		// phpcs:disable WordPress.Security.ValidatedSanitizedInput.InputNotSanitized -- a table checked whole by Firm_Bridge_Policy_Doc, never printed unescaped.
		if ( isset( $_POST['firm_bridge_policy'] ) ) {
			$kind = 'json';
			$text = (string) wp_unslash( $_POST['firm_bridge_policy'] );
		} else {
			$kind = 'grid';
			$grid = isset( $_POST['firm_bridge_roles'] ) && is_array( $_POST['firm_bridge_roles'] ) ? wp_unslash( $_POST['firm_bridge_roles'] ) : array();
			$size = isset( $_POST['firm_bridge_max_group_size'] ) ? wp_unslash( $_POST['firm_bridge_max_group_size'] ) : null;
			$text = Firm_Bridge_Policy_Doc::pretty( self::from_grid( $grid, $size ) );
		}
		// phpcs:enable
		$parsed = Firm_Bridge_Policy_Doc::parse( $text );
		if ( null === $parsed['policy'] ) {
			self::keep_draft( $kind, $text );
			self::back_refused( 'policy-invalid', self::where( $parsed['field'] ) . $parsed['error'], $parsed['field'] );
		}
		$id = Firm_Bridge_Sync::enqueue_policy( $parsed['policy'] );
		Firm_Bridge_Outbox::deliver( 10 );
		$row = Firm_Bridge_Outbox::row( (int) $id );
		if ( $row && 'failed' === $row['status'] ) {
			// The firm's table changes only when the bridge took it or could not be asked.
			self::keep_draft( $kind, $text );
			$field = is_array( json_decode( (string) $row['body'], true ) ) ? self::refused_field( (string) $row['last_error'] ) : null;
			self::back_refused( 'policy-refused', (string) $row['last_error'], $field );
		}
		Firm_Bridge_Settings::set_policy( $parsed['policy'] );
		delete_transient( 'firm_bridge_policy_draft_' . get_current_user_id() );
		if ( $row && 'delivered' === $row['status'] ) {
			Firm_Bridge_Admin::back( Firm_Bridge_Admin::RESTRICTIONS, 'policy-saved' );
		}
		Firm_Bridge_Admin::back( Firm_Bridge_Admin::RESTRICTIONS, 'policy-queued', $row && $row['last_error'] ? (string) $row['last_error'] : null );
	}

	/**
	 * The table the grid describes: the shown table with the grid's values put in (keys the
	 * screen does not show are kept).
	 *
	 * @param array $grid Submitted roles.
	 * @param mixed $size Submitted group size.
	 * @return array
	 */
	public static function from_grid( array $grid, $size ) {
		list( $table ) = self::shown_table();
		$table         = is_array( $table ) ? $table : array( 'version' => 1 );
		$roles         = isset( $table['roles'] ) && is_array( $table['roles'] ) ? $table['roles'] : array();
		foreach ( Firm_Bridge_Policy_Doc::ROLES as $role ) {
			$row  = isset( $grid[ $role ] ) && is_array( $grid[ $role ] ) ? $grid[ $role ] : array();
			$keep = isset( $roles[ $role ] ) && is_array( $roles[ $role ] ) ? $roles[ $role ] : array();
			$talk = isset( $row['conversations'] ) && is_array( $row['conversations'] ) ? array_values( array_map( 'strval', $row['conversations'] ) ) : array();
			$roles[ $role ] = array_merge(
				$keep,
				array(
					'power_level'   => self::whole( $row['power_level'] ?? null ),
					'matter_rooms'  => is_string( $row['matter_rooms'] ?? null ) ? $row['matter_rooms'] : null,
					'conversations' => array_values( array_unique( $talk ) ),
				)
			);
		}
		$table['roles']          = $roles;
		$table['max_group_size'] = self::whole( $size );
		return $table;
	}

	/**
	 * A typed whole number as an integer; anything else as typed, for the check to name.
	 *
	 * @param mixed $value Submitted.
	 * @return int|string|null
	 */
	private static function whole( $value ) {
		if ( is_string( $value ) && 1 === preg_match( '/\A\s*-?\d{1,9}\s*\z/', $value ) ) {
			return (int) $value;
		}
		return is_string( $value ) ? $value : null;
	}

	/**
	 * "Client, power level: " for roles.client.power_level.
	 *
	 * @param string|null $field Dotted path.
	 * @return string
	 */
	private static function where( $field ) {
		if ( ! is_string( $field ) || 1 !== preg_match( '/\Aroles\.(\w+)(?:\.(\w+))?\z/', $field, $m ) ) {
			return '';
		}
		$roles = self::role_labels();
		$parts = array(
			'power_level'   => __( 'power level', 'firm-bridge' ),
			'matter_rooms'  => __( 'matter rooms', 'firm-bridge' ),
			'conversations' => __( 'may talk with', 'firm-bridge' ),
		);
		$role = $roles[ $m[1] ] ?? $m[1];
		return isset( $m[2] ) ? $role . ', ' . ( $parts[ $m[2] ] ?? $m[2] ) . ': ' : $role . ': ';
	}

	/**
	 * The field a bridge refusal names ("HTTP 400 FIRM_BAD_FIELD (policy): policy:
	 * roles.client.power_level must ...").
	 *
	 * @param string $error The recorded answer.
	 * @return string|null
	 */
	private static function refused_field( $error ) {
		return 1 === preg_match( '/\b(roles\.\w+(?:\.\w+)?|max_group_size)\b/', $error, $m ) ? $m[1] : null;
	}

	/**
	 * @param string      $code   Notice code.
	 * @param string      $detail Why.
	 * @param string|null $field  The field to mark.
	 */
	private static function back_refused( $code, $detail, $field ) {
		set_transient( 'firm_bridge_detail_' . get_current_user_id(), $detail, 60 );
		$args = array(
			'page'               => Firm_Bridge_Admin::RESTRICTIONS,
			'firm_bridge_notice' => $code,
		);
		if ( is_string( $field ) && '' !== $field ) {
			$args['field'] = $field;
		}
		wp_safe_redirect( add_query_arg( $args, admin_url( 'admin.php' ) ) );
		exit;
	}

	/**
	 * Loads the bridge's current table into the form (not sent).
	 */
	public static function handle_load() {
		Firm_Bridge_Admin::guard( self::LOAD );
		$table = self::bridge_table( 10 );
		if ( null === $table ) {
			Firm_Bridge_Admin::back( Firm_Bridge_Admin::RESTRICTIONS, 'policy-unloaded' );
		}
		self::keep_draft( 'grid', Firm_Bridge_Policy_Doc::pretty( $table ) );
		Firm_Bridge_Admin::back( Firm_Bridge_Admin::RESTRICTIONS, 'policy-loaded' );
	}

	/**
	 * The shown table as a JSON file.
	 */
	public static function handle_export() {
		if ( ! current_user_can( Firm_Bridge_Roles::MANAGE ) ) {
			wp_die( esc_html__( 'You may not change the Firm Bridge.', 'firm-bridge' ), esc_html__( 'Forbidden', 'firm-bridge' ), array( 'response' => 403 ) );
		}
		check_admin_referer( self::EXPORT );
		list( $table ) = self::shown_table();
		if ( null === $table ) {
			Firm_Bridge_Admin::back( Firm_Bridge_Admin::RESTRICTIONS, 'policy-unloaded' );
		}
		nocache_headers();
		header( 'Content-Type: application/json; charset=utf-8' );
		header( 'Content-Disposition: attachment; filename="firm-role-table.json"' );
		echo Firm_Bridge_Policy_Doc::pretty( $table ) . "\n"; // phpcs:ignore WordPress.Security.EscapeOutput -- a JSON file, not HTML.
		exit;
	}
}
