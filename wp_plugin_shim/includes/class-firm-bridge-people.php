<?php
/**
 * People: profile fields (supervising partner, assigned attorneys, suspension), the snapshot the
 * bridge receives, departures and their handover.
 *
 * @package Firm_Bridge
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * User-side sync.
 */
final class Firm_Bridge_People {

	const META_SUPERVISOR = 'firm_supervisor';
	const META_ATTORNEYS  = 'firm_attorneys';
	const META_SUSPENDED  = 'firm_suspended';
	const META_ERASED     = '_firm_bridge_erased';
	const META_MXID       = '_firm_bridge_mxid';
	const META_KNOWN      = '_firm_bridge_known';
	const META_HASH       = '_firm_bridge_hash';
	const META_ACTIVE     = '_firm_bridge_active';
	const NONCE           = 'firm_bridge_profile';
	const NONCE_FIELD     = '_firm_bridge_profile_nonce';

	/** User meta whose change changes what the bridge holds. */
	const TRACKED_META = array( self::META_SUPERVISOR, self::META_ATTORNEYS, self::META_SUSPENDED, self::META_ERASED, 'first_name', 'last_name', 'nickname' );

	/**
	 * Hooks.
	 */
	public static function hooks() {
		add_action( 'init', array( __CLASS__, 'register_meta' ) );
		foreach ( array( 'user_register', 'profile_update', 'set_user_role', 'add_user_role', 'remove_user_role' ) as $hook ) {
			add_action( $hook, array( __CLASS__, 'changed' ), 10, 1 );
		}
		foreach ( array( 'added_user_meta', 'updated_user_meta', 'deleted_user_meta' ) as $hook ) {
			add_action( $hook, array( __CLASS__, 'meta_changed' ), 10, 3 );
		}
		add_action( 'delete_user', array( __CLASS__, 'deleting' ), 10, 1 );
		add_action( 'wpmu_delete_user', array( __CLASS__, 'deleting' ), 10, 1 );
		add_action( 'show_user_profile', array( __CLASS__, 'profile_fields' ) );
		add_action( 'edit_user_profile', array( __CLASS__, 'profile_fields' ) );
		add_action( 'user_new_form', array( __CLASS__, 'profile_fields' ) );
		// After edit_user() has read the form and before it saves, and on the REST route.
		add_action( 'user_profile_update_errors', array( __CLASS__, 'keep_own_name' ), 10, 3 );
		add_filter( 'rest_pre_insert_user', array( __CLASS__, 'keep_own_name_rest' ), 10, 2 );
		add_action( 'admin_enqueue_scripts', array( __CLASS__, 'profile_script' ) );
		add_action( 'admin_notices', array( __CLASS__, 'suspension_notice' ) );
		add_action( 'personal_options_update', array( __CLASS__, 'save_profile' ) );
		add_action( 'edit_user_profile_update', array( __CLASS__, 'save_profile' ) );
		add_action( 'edit_user_created_user', array( __CLASS__, 'save_profile' ) );
		add_filter( 'manage_users_columns', array( __CLASS__, 'columns' ) );
		add_filter( 'manage_users_custom_column', array( __CLASS__, 'column' ), 10, 3 );
		// Matters are not public: their authors must not become public "authors" in the REST API.
		add_filter( 'rest_user_query', array( __CLASS__, 'rest_user_query' ) );
		add_filter( 'get_usernumposts', array( __CLASS__, 'posts_without_matters' ), 10, 4 );
	}

	/**
	 * REST-visible profile fields (edit context only; editing needs edit_users).
	 */
	public static function register_meta() {
		$auth = static function () {
			return current_user_can( 'edit_users' );
		};
		register_meta(
			'user',
			self::META_SUPERVISOR,
			array(
				'type'              => 'integer',
				'single'            => true,
				'default'           => 0,
				'sanitize_callback' => 'absint',
				'auth_callback'     => $auth,
				'show_in_rest'      => array( 'schema' => array( 'context' => array( 'edit' ) ) ),
			)
		);
		register_meta(
			'user',
			self::META_ATTORNEYS,
			array(
				'type'              => 'array',
				'single'            => true,
				'default'           => array(),
				'sanitize_callback' => array( 'Firm_Bridge_Mapper', 'ids' ),
				'auth_callback'     => $auth,
				'show_in_rest'      => array(
					'schema' => array(
						'context' => array( 'edit' ),
						'items'   => array( 'type' => 'integer' ),
					),
				),
			)
		);
		register_meta(
			'user',
			self::META_SUSPENDED,
			array(
				'type'          => 'boolean',
				'single'        => true,
				'default'       => false,
				'auth_callback' => $auth,
				'show_in_rest'  => array( 'schema' => array( 'context' => array( 'edit' ) ) ),
			)
		);
	}

	/** Name fields a firm person may not change on their own profile. */
	const NAME_FIELDS = array( 'first_name', 'last_name', 'nickname', 'display_name' );

	/**
	 * Whether the person logged in is renaming themselves without being one who manages people:
	 * their name is what others see in every chat room, so the firm sets it ("Jane Doe
	 * (Partner)" is not a name a client may take).
	 *
	 * @param int $user_id The profile being saved.
	 * @return bool
	 */
	private static function own_name_locked( $user_id ) {
		return (int) $user_id === get_current_user_id()
			&& ! current_user_can( 'edit_users' )
			&& null !== self::mapped( (int) $user_id );
	}

	/**
	 * The profile screen: whatever name was typed, the stored one is kept and the rest of the
	 * profile saves. Taking the fields out of $_POST instead made edit_user() refuse every save
	 * ("Please enter a nickname"), so such people could not change their password either.
	 *
	 * @param WP_Error $errors Errors so far (by reference through the object).
	 * @param bool     $update Whether an existing user is saved.
	 * @param stdClass $user   The fields edit_user() is about to save.
	 */
	public static function keep_own_name( $errors, $update, $user ) {
		if ( ! $update || empty( $user->ID ) || ! self::own_name_locked( (int) $user->ID ) ) {
			return;
		}
		foreach ( self::NAME_FIELDS as $field ) {
			// Unset fields are not written: wp_update_user() keeps the stored values.
			unset( $user->$field );
		}
		// The nickname is the firm's to set, so an empty one is not this person's mistake.
		$errors->remove( 'nickname' );
	}

	/**
	 * On one's own profile screen, a locked name is shown read-only with the reason.
	 *
	 * @param string $hook Admin page.
	 */
	public static function profile_script( $hook ) {
		if ( 'profile.php' !== $hook || ! self::own_name_locked( get_current_user_id() ) ) {
			return;
		}
		wp_enqueue_script( 'firm-bridge-profile', plugins_url( 'assets/profile.js', FIRM_BRIDGE_FILE ), array(), FIRM_BRIDGE_VERSION, true );
		wp_localize_script(
			'firm-bridge-profile',
			'firmBridgeProfile',
			array( 'note' => __( 'Your name is the one everyone sees in secure chat, so the firm sets it. Ask the firm\'s office to change it.', 'firm-bridge' ) )
		);
	}

	/**
	 * The REST route (/wp/v2/users/me): the same fields are dropped from the update.
	 *
	 * @param object          $prepared User fields to save.
	 * @param WP_REST_Request $request  Request.
	 * @return object
	 */
	public static function keep_own_name_rest( $prepared, $request ) {
		if ( isset( $prepared->ID ) && self::own_name_locked( (int) $prepared->ID ) ) {
			foreach ( self::NAME_FIELDS as $field ) {
				unset( $prepared->$field );
			}
		}
		return $prepared;
	}

	/**
	 * @param array $args WP_User_Query arguments from the REST users route.
	 * @return array
	 */
	public static function rest_user_query( $args ) {
		if ( isset( $args['has_published_posts'] ) && is_array( $args['has_published_posts'] ) ) {
			$args['has_published_posts'] = array_values( array_diff( $args['has_published_posts'], array( Firm_Bridge_Matters::POST_TYPE ) ) );
		}
		return $args;
	}

	/**
	 * Published matters do not make their author a public "author" either (the REST route for
	 * one user shows anyone with published posts of a REST-visible type).
	 *
	 * @param int          $count       Posts counted.
	 * @param int          $userid      User id.
	 * @param string|array $post_type   Types counted.
	 * @param bool         $public_only Whether only public posts count.
	 * @return int|string
	 */
	public static function posts_without_matters( $count, $userid, $post_type, $public_only ) {
		$types = (array) $post_type;
		if ( ! in_array( Firm_Bridge_Matters::POST_TYPE, $types, true ) ) {
			return $count;
		}
		$rest = array_values( array_diff( $types, array( Firm_Bridge_Matters::POST_TYPE ) ) );
		return $rest ? count_user_posts( $userid, $rest, $public_only ) : 0;
	}

	/**
	 * @param int $user_id User id.
	 */
	public static function changed( $user_id ) {
		Firm_Bridge_Sync::person( (int) $user_id );
	}

	/**
	 * @param int    $meta_id  Meta row id.
	 * @param int    $user_id  User id.
	 * @param string $meta_key Key.
	 */
	public static function meta_changed( $meta_id, $user_id, $meta_key ) {
		if ( in_array( $meta_key, self::TRACKED_META, true ) ) {
			Firm_Bridge_Sync::person( (int) $user_id );
		}
	}

	/**
	 * The user as the mapper reads it.
	 *
	 * @param WP_User $user User.
	 * @return array
	 */
	public static function user_array( WP_User $user ) {
		return array(
			'id'           => (int) $user->ID,
			'login'        => $user->user_login,
			'display_name' => $user->display_name,
			'email'        => $user->user_email,
			'roles'        => (array) $user->roles,
			'suspended'    => Firm_Bridge_Mapper::truthy( get_user_meta( $user->ID, self::META_SUSPENDED, true ) ),
			'erased'       => Firm_Bridge_Mapper::truthy( get_user_meta( $user->ID, self::META_ERASED, true ) ),
			'supervisor'   => get_user_meta( $user->ID, self::META_SUPERVISOR, true ),
			'attorneys'    => get_user_meta( $user->ID, self::META_ATTORNEYS, true ),
		);
	}

	/**
	 * Role and standing of people, for checking references.
	 *
	 * @param int[] $ids User ids.
	 * @return array id => array{role:?string, active:bool}
	 */
	public static function directory( array $ids ) {
		$ids = Firm_Bridge_Mapper::ids( $ids );
		$out = array();
		if ( ! $ids ) {
			return $out;
		}
		foreach ( get_users( array( 'include' => $ids ) ) as $user ) {
			$out[ (int) $user->ID ] = array(
				'role'   => Firm_Bridge_Mapper::firm_role( (array) $user->roles ),
				'active' => ! Firm_Bridge_Mapper::truthy( get_user_meta( $user->ID, self::META_SUSPENDED, true ) )
					&& ! Firm_Bridge_Mapper::truthy( get_user_meta( $user->ID, self::META_ERASED, true ) ),
			);
		}
		return $out;
	}

	/**
	 * The body the bridge would receive for this user now.
	 *
	 * @param int $user_id User id.
	 * @return array|null Mapper result, or null (no such user, or no firm role).
	 */
	public static function mapped( $user_id ) {
		$user = get_userdata( $user_id );
		if ( ! $user ) {
			return null;
		}
		$data = self::user_array( $user );
		$refs = array_merge( Firm_Bridge_Mapper::ids( $data['supervisor'] ), Firm_Bridge_Mapper::ids( $data['attorneys'] ) );
		return Firm_Bridge_Mapper::person( $data, self::directory( $refs ) );
	}

	/**
	 * Whether the person may use chat now (firm role, not suspended).
	 *
	 * @param int $user_id User id.
	 * @return bool
	 */
	public static function active( $user_id ) {
		$mapped = self::mapped( $user_id );
		return null !== $mapped && $mapped['body']['active'];
	}

	/**
	 * Writes an outbox row for this user's current state, unless it is what was sent last.
	 *
	 * @param int  $user_id User id.
	 * @param bool $force   Write even if unchanged (resync).
	 * @return int|null Row id, or null when nothing was written.
	 */
	public static function enqueue( $user_id, $force = false ) {
		$user = get_userdata( $user_id );
		if ( ! $user ) {
			return null;
		}
		$mapped     = self::mapped( $user_id );
		$known      = '1' === (string) get_user_meta( $user_id, self::META_KNOWN, true );
		$was_active = '1' === (string) get_user_meta( $user_id, self::META_ACTIVE, true );
		if ( null === $mapped ) {
			// No firm role (any more): a person the bridge knows leaves, like a departure.
			if ( ! $known || ( ! $was_active && ! $force ) ) {
				return null;
			}
			$row = self::enqueue_deactivate( $user_id, $user->user_login );
			update_user_meta( $user_id, self::META_ACTIVE, '0' );
			update_user_meta( $user_id, self::META_HASH, 'deactivated' );
			if ( $was_active ) {
				self::hand_over( $user_id, self::supervisor_for_handover( $user ) );
			}
			return $row;
		}
		$body = $mapped['body'];
		$raw  = (string) wp_json_encode( $body, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE );
		$hash = md5( $raw );
		if ( ! $force && $known && get_user_meta( $user_id, self::META_HASH, true ) === $hash ) {
			return null;
		}
		$summary = sprintf( 'Person %s (%s%s)', $user->user_login, $body['role'], $body['active'] ? '' : ', departed' );
		$row     = Firm_Bridge_Outbox::enqueue( 'person', $user_id, 'PUT', '/_firm/v1/people/' . (int) $user_id, null, $mapped['deps'], $summary, $raw );
		update_user_meta( $user_id, self::META_KNOWN, '1' );
		update_user_meta( $user_id, self::META_HASH, $hash );
		update_user_meta( $user_id, self::META_ACTIVE, $body['active'] ? '1' : '0' );
		if ( $was_active && ! $body['active'] ) {
			self::hand_over( $user_id, $body['supervisor'] );
		}
		return $row;
	}

	/**
	 * @param int    $user_id User id.
	 * @param string $login   Login, for the Outbox screen.
	 * @return int Row id.
	 */
	private static function enqueue_deactivate( $user_id, $login ) {
		return Firm_Bridge_Outbox::enqueue( 'person', $user_id, 'POST', '/_firm/v1/people/' . (int) $user_id . '/deactivate', null, array(), sprintf( 'Departure of %s', $login ) );
	}

	/**
	 * The supervisor the bridge holds for this person (associates only), for a handover.
	 *
	 * @param WP_User $user User.
	 * @return int|null
	 */
	private static function supervisor_for_handover( WP_User $user ) {
		$data            = self::user_array( $user );
		$data['roles']   = array( 'firm_associate' );
		$data['suspended'] = false;
		$data['erased']  = false;
		$sup             = Firm_Bridge_Mapper::ids( $data['supervisor'] );
		$mapped          = Firm_Bridge_Mapper::person( $data, self::directory( $sup ) );
		$was_associate   = 'associate' === Firm_Bridge_Mapper::firm_role( (array) $user->roles ) || 'associate' === self::last_sent_role( $user->ID );
		return ( $was_associate && $mapped ) ? $mapped['body']['supervisor'] : null;
	}

	/**
	 * The role in the last body sent for this person.
	 *
	 * @param int $user_id User id.
	 * @return string|null
	 */
	private static function last_sent_role( $user_id ) {
		$row = Firm_Bridge_Outbox::latest( 'person', $user_id );
		if ( ! $row || 'PUT' !== $row['method'] ) {
			return null;
		}
		$body = json_decode( $row['body'], true );
		return is_array( $body ) && isset( $body['role'] ) ? (string) $body['role'] : null;
	}

	/**
	 * A user is being deleted: the bridge is told at once (the user is gone by the end of this
	 * request), and their matters and people pass on as the bridge passes them.
	 *
	 * @param int $user_id User id.
	 */
	public static function deleting( $user_id ) {
		$user = get_userdata( $user_id );
		if ( ! $user || '1' !== (string) get_user_meta( $user_id, self::META_KNOWN, true ) ) {
			return;
		}
		$was_active = '1' === (string) get_user_meta( $user_id, self::META_ACTIVE, true );
		$successor  = $was_active ? self::supervisor_for_handover( $user ) : null;
		self::enqueue_deactivate( $user_id, $user->user_login );
		if ( $was_active ) {
			self::hand_over( $user_id, $successor );
		}
	}

	/**
	 * Mirrors the bridge's departure handover in WordPress.
	 *
	 * @param int      $departing  Departing person.
	 * @param int|null $supervisor Their supervising partner as sent to the bridge.
	 */
	public static function hand_over( $departing, $supervisor ) {
		$successor = Firm_Bridge_Handover::successor( $supervisor, null === $supervisor ? array() : self::directory( array( $supervisor ) ) );
		foreach ( Firm_Bridge_Matters::ids_for_person( $departing ) as $matter_id ) {
			$matter = Firm_Bridge_Matters::assignments( $matter_id ) + array( 'walled_off' => Firm_Bridge_Walls::walled( $matter_id ) );
			$new    = Firm_Bridge_Handover::matter( $matter, $departing, $successor );
			if ( null !== $new ) {
				Firm_Bridge_Matters::set_assignments( $matter_id, $new );
			}
		}
		$assigned = get_users(
			array(
				'role__in' => array( 'firm_paralegal', 'firm_client' ),
				'fields'   => 'ID',
			)
		);
		foreach ( $assigned as $pid ) {
			$list = get_user_meta( (int) $pid, self::META_ATTORNEYS, true );
			$new  = Firm_Bridge_Handover::attorneys( is_array( $list ) ? $list : array(), $departing, $successor );
			if ( null !== $new ) {
				update_user_meta( (int) $pid, self::META_ATTORNEYS, $new );
			}
		}
		$supervised = get_users(
			array(
				'meta_key'   => self::META_SUPERVISOR, // phpcs:ignore WordPress.DB.SlowDBQuery
				'meta_value' => (string) (int) $departing, // phpcs:ignore WordPress.DB.SlowDBQuery
				'fields'     => 'ID',
			)
		);
		foreach ( $supervised as $pid ) {
			update_user_meta( (int) $pid, self::META_SUPERVISOR, null === $successor ? 0 : (int) $successor );
		}
	}

	/**
	 * Active people holding one of these firm roles, for the pickers.
	 *
	 * @param string[] $firm_roles Firm roles (partner, associate, ...).
	 * @return WP_User[]
	 */
	public static function people_with( array $firm_roles ) {
		$wp_roles = array();
		foreach ( Firm_Bridge_Mapper::ROLES as $wp_role => $firm_role ) {
			if ( in_array( $firm_role, $firm_roles, true ) ) {
				$wp_roles[] = $wp_role;
			}
		}
		$users = get_users(
			array(
				'role__in' => $wp_roles,
				'orderby'  => 'display_name',
			)
		);
		return array_values(
			array_filter(
				$users,
				static function ( $u ) use ( $firm_roles ) {
					return in_array( Firm_Bridge_Mapper::firm_role( (array) $u->roles ), $firm_roles, true )
						&& ! Firm_Bridge_Mapper::truthy( get_user_meta( $u->ID, self::META_SUSPENDED, true ) );
				}
			)
		);
	}

	/** WordPress roles each profile field applies to (the rows follow the role select). */
	const FIELD_ROLES = array(
		'supervisor' => array( 'firm_associate' ),
		'attorneys'  => array( 'firm_client', 'firm_paralegal' ),
	);

	/**
	 * Profile fields on user-edit.php, profile.php and user-new.php, each shown only for the
	 * roles it applies to.
	 *
	 * @param WP_User|string $user The user, or the user-new.php context string.
	 */
	public static function profile_fields( $user ) {
		if ( ! current_user_can( 'edit_users' ) ) {
			return;
		}
		$uid        = $user instanceof WP_User ? (int) $user->ID : 0;
		$roles      = $user instanceof WP_User ? (array) $user->roles : array( (string) get_option( 'default_role' ) );
		$supervisor = $uid ? (int) get_user_meta( $uid, self::META_SUPERVISOR, true ) : 0;
		$attorneys  = $uid ? Firm_Bridge_Mapper::ids( get_user_meta( $uid, self::META_ATTORNEYS, true ) ) : array();
		$suspended  = $uid && Firm_Bridge_Mapper::truthy( get_user_meta( $uid, self::META_SUSPENDED, true ) );
		$mxid       = $uid ? (string) get_user_meta( $uid, self::META_MXID, true ) : '';
		$row        = static function ( $field ) use ( $roles ) {
			$applies = array_intersect( self::FIELD_ROLES[ $field ], $roles ) ? '' : ' hidden';
			return sprintf( ' class="firm-field" data-firm-roles="%s"%s', esc_attr( implode( ' ', self::FIELD_ROLES[ $field ] ) ), $applies );
		};
		wp_nonce_field( self::NONCE, self::NONCE_FIELD );
		?>
		<h2 class="firm-bridge-profile-heading"><?php esc_html_e( 'Firm chat', 'firm-bridge' ); ?></h2>
		<table class="form-table firm-bridge-profile" role="presentation">
			<tr<?php echo $row( 'supervisor' ); // phpcs:ignore WordPress.Security.EscapeOutput -- escaped above. ?>>
				<th><label for="firm_supervisor"><?php esc_html_e( 'Supervising partner', 'firm-bridge' ); ?></label></th>
				<td>
					<select name="firm_supervisor" id="firm_supervisor" aria-describedby="firm_supervisor-description">
						<option value="0"><?php esc_html_e( '— None —', 'firm-bridge' ); ?></option>
						<?php foreach ( self::people_with( array( 'partner' ) ) as $p ) : ?>
							<?php if ( (int) $p->ID !== $uid ) : ?>
								<option value="<?php echo esc_attr( (string) $p->ID ); ?>" <?php selected( $supervisor, (int) $p->ID ); ?>><?php echo esc_html( $p->display_name ); ?></option>
							<?php endif; ?>
						<?php endforeach; ?>
					</select>
					<p class="description" id="firm_supervisor-description"><?php esc_html_e( 'The partner this associate reports to, who takes over their matters if they leave.', 'firm-bridge' ); ?></p>
				</td>
			</tr>
			<tr<?php echo $row( 'attorneys' ); // phpcs:ignore WordPress.Security.EscapeOutput -- escaped above. ?>>
				<th><label for="firm_attorneys"><?php esc_html_e( 'Assigned attorneys', 'firm-bridge' ); ?></label></th>
				<td>
					<select name="firm_attorneys[]" id="firm_attorneys" multiple size="5" aria-describedby="firm_attorneys-description">
						<?php foreach ( self::people_with( Firm_Bridge_Mapper::ATTORNEY_ROLES ) as $p ) : ?>
							<?php if ( (int) $p->ID !== $uid ) : ?>
								<option value="<?php echo esc_attr( (string) $p->ID ); ?>" <?php selected( in_array( (int) $p->ID, $attorneys, true ) ); ?>><?php echo esc_html( $p->display_name ); ?></option>
							<?php endif; ?>
						<?php endforeach; ?>
					</select>
					<p class="description" id="firm_attorneys-description"><?php echo esc_html( __( 'The partners and associates this client or paralegal works with.', 'firm-bridge' ) . ' ' . self::multiple_hint() ); ?></p>
				</td>
			</tr>
			<tr class="firm-field" data-firm-roles="<?php echo esc_attr( implode( ' ', array_keys( Firm_Bridge_Mapper::ROLES ) ) ); ?>"<?php echo null === Firm_Bridge_Mapper::firm_role( $roles ) ? ' hidden' : ''; ?>>
				<th><?php esc_html_e( 'Chat access', 'firm-bridge' ); ?></th>
				<td>
					<label><input type="checkbox" name="firm_suspended" value="1" <?php checked( $suspended ); ?><?php echo $uid ? ' data-firm-confirm-on="' . esc_attr( self::suspension_question( $user ) ) . '"' : ''; ?> /> <?php esc_html_e( 'Suspended (departed): sessions end, rooms are left, matters pass to the supervising partner', 'firm-bridge' ); ?></label>
					<?php if ( '' !== $mxid ) : ?>
						<p class="description"><?php echo esc_html( sprintf( /* translators: %s: Matrix user id */ __( 'Chat account: %s', 'firm-bridge' ), $mxid ) ); ?></p>
					<?php endif; ?>
				</td>
			</tr>
		</table>
		<?php
	}

	/** @return string How to choose several in a list. */
	public static function multiple_hint() {
		return __( 'To choose several, hold Ctrl (⌘ on a Mac) while you click; click again with Ctrl held to remove one.', 'firm-bridge' );
	}

	/**
	 * Who takes over a person's matters and clients if they leave now, as the bridge decides:
	 * an associate's active supervising partner, else no one.
	 *
	 * @param WP_User $user The person.
	 * @return WP_User|null
	 */
	public static function successor( WP_User $user ) {
		$id = self::supervisor_for_handover( $user );
		$id = Firm_Bridge_Handover::successor( $id, null === $id ? array() : self::directory( array( $id ) ) );
		$to = null === $id ? false : get_userdata( (int) $id );
		return $to ? $to : null;
	}

	/**
	 * The question asked before a suspension is saved.
	 *
	 * @param WP_User $user The person.
	 * @return string
	 */
	private static function suspension_question( WP_User $user ) {
		$to   = self::successor( $user );
		$then = null === $to
			/* translators: %s: the person */
			? sprintf( __( '%s has no supervising partner: they are taken off their matters and clients, and no one takes them over.', 'firm-bridge' ), $user->display_name )
			/* translators: 1: the person, 2: their supervising partner */
			: sprintf( __( 'Their matters and clients pass to their supervising partner, %2$s.', 'firm-bridge' ), $user->display_name, $to->display_name );
		/* translators: 1: the person, 2: who takes over */
		return sprintf( __( 'Suspend %1$s? Their chat sessions end at once and they leave every room. %2$s', 'firm-bridge' ), $user->display_name, $then );
	}

	/**
	 * After a save that suspended someone: what happened, on the next screen.
	 */
	public static function suspension_notice() {
		$key  = 'firm_bridge_suspended_' . get_current_user_id();
		$text = get_transient( $key );
		if ( ! is_string( $text ) ) {
			return;
		}
		delete_transient( $key );
		echo '<div class="notice notice-warning firm-bridge-suspended"><p>' . esc_html( $text ) . '</p></div>';
	}

	/**
	 * Saves the profile fields (WordPress has checked its own nonce; ours is checked too).
	 *
	 * @param int $user_id User id.
	 */
	public static function save_profile( $user_id ) {
		if ( ! isset( $_POST[ self::NONCE_FIELD ] ) ) {
			return;
		}
		if ( ! wp_verify_nonce( sanitize_text_field( wp_unslash( $_POST[ self::NONCE_FIELD ] ) ), self::NONCE ) ) {
			wp_die( esc_html__( 'The form has expired. Go back, reload the page and try again.', 'firm-bridge' ), 403 );
		}
		if ( ! current_user_can( 'edit_users' ) || ! current_user_can( 'edit_user', $user_id ) ) {
			wp_die( esc_html__( 'You may not change firm chat settings.', 'firm-bridge' ), 403 );
		}
		$supervisor = isset( $_POST['firm_supervisor'] ) ? absint( wp_unslash( $_POST['firm_supervisor'] ) ) : 0;
		$attorneys  = isset( $_POST['firm_attorneys'] ) ? Firm_Bridge_Mapper::ids( (array) wp_unslash( $_POST['firm_attorneys'] ) ) : array(); // phpcs:ignore WordPress.Security.ValidatedSanitizedInput.InputNotSanitized -- ids() keeps digits only.
		// Only people the pickers offer are kept.
		$partners  = wp_list_pluck( self::people_with( array( 'partner' ) ), 'ID' );
		$attys     = array_map( 'intval', wp_list_pluck( self::people_with( Firm_Bridge_Mapper::ATTORNEY_ROLES ), 'ID' ) );
		$supervisor = ( $supervisor !== (int) $user_id && in_array( $supervisor, array_map( 'intval', $partners ), true ) ) ? $supervisor : 0;
		$attorneys  = array_values( array_filter( $attorneys, static fn( $id ) => $id !== (int) $user_id && in_array( $id, $attys, true ) ) );
		$was_suspended = Firm_Bridge_Mapper::truthy( get_user_meta( $user_id, self::META_SUSPENDED, true ) );
		$person        = get_userdata( $user_id );
		$successor     = $person ? self::successor( $person ) : null;
		update_user_meta( $user_id, self::META_SUPERVISOR, $supervisor );
		update_user_meta( $user_id, self::META_ATTORNEYS, $attorneys );
		update_user_meta( $user_id, self::META_SUSPENDED, ! empty( $_POST['firm_suspended'] ) );
		Firm_Bridge_Sync::person( (int) $user_id );
		if ( $person && ! $was_suspended && ! empty( $_POST['firm_suspended'] ) ) {
			$text = null === $successor
				/* translators: %s: the person */
				? sprintf( __( '%s is suspended: their chat sessions end and they leave every room. No one takes over their matters and clients.', 'firm-bridge' ), $person->display_name )
				/* translators: 1: the person, 2: who takes over */
				: sprintf( __( '%1$s is suspended: their chat sessions end and they leave every room. Their matters and clients passed to %2$s.', 'firm-bridge' ), $person->display_name, $successor->display_name );
			set_transient( 'firm_bridge_suspended_' . get_current_user_id(), $text, 120 );
		}
	}

	/**
	 * @param array $columns Users list columns.
	 * @return array
	 */
	public static function columns( $columns ) {
		$columns['firm_chat'] = __( 'Firm chat', 'firm-bridge' );
		return $columns;
	}

	/**
	 * @param string $output  Column output so far.
	 * @param string $column  Column.
	 * @param int    $user_id User id.
	 * @return string
	 */
	public static function column( $output, $column, $user_id ) {
		if ( 'firm_chat' !== $column ) {
			return $output;
		}
		$mapped = self::mapped( $user_id );
		if ( null === $mapped ) {
			return '—';
		}
		$mxid = (string) get_user_meta( $user_id, self::META_MXID, true );
		$row  = Firm_Bridge_Outbox::latest( 'person', (int) $user_id );
		if ( Firm_Bridge_Mapper::truthy( get_user_meta( $user_id, self::META_ERASED, true ) ) ) {
			$state = __( 'erased: personal data removed, account closed', 'firm-bridge' );
		} elseif ( ! $mapped['body']['active'] ) {
			$state = __( 'departed', 'firm-bridge' );
		} elseif ( $row && 'failed' === $row['status'] ) {
			$state = __( 'not synced: the bridge refused it (see Outbox)', 'firm-bridge' );
		} elseif ( ( $row && 'pending' === $row['status'] ) || '' === $mxid ) {
			$state = __( 'pending: not in chat yet', 'firm-bridge' );
		} else {
			$state = __( 'active', 'firm-bridge' );
		}
		return esc_html( ( '' !== $mxid ? $mxid . ' · ' : '' ) . $state );
	}
}
