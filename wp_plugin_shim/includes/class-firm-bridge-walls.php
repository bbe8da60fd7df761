<?php
/**
 * Ethical walls. A matter may name people who may never be assigned to it (its wall), and the
 * firm may decide that only a matter's responsible partner and administrators change its
 * assignments and its wall (Settings: "Who assigns").
 *
 * WordPress keeps its own record right: people on a matter's wall cannot open, edit or delete
 * the matter; the edit screen takes them (and anyone taken off the wall in the same save) out of
 * the assignments; REST and the edit screen refuse assignment changes by anyone the firm's
 * setting does not allow; the bridge is sent the wall with every matter. The bridge refuses an
 * assignment that breaks a wall whatever it is sent (bridge/db/store.py).
 *
 * @package Firm_Bridge
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * The wall of each matter and who may change assignments.
 */
final class Firm_Bridge_Walls {

	const META        = 'firm_matter_walled_off';
	const RESTRICTED  = 'firm_bridge_assignments_restricted';
	const NONCE       = 'firm_bridge_wall';
	const NONCE_FIELD = '_firm_bridge_wall_nonce';
	const FIELD       = 'firm_matter_walled_off';

	/**
	 * What each edit-screen save started from: post id => array{assignments, wall, allowed}.
	 *
	 * @var array<int,array>
	 */
	private static $before = array();

	/**
	 * Hooks.
	 */
	public static function hooks() {
		add_action( 'init', array( __CLASS__, 'register' ), 11 );
		add_filter( 'map_meta_cap', array( __CLASS__, 'walled_caps' ), 10, 4 );
		foreach ( self::guarded() as $key ) {
			// The filter registered meta is checked with (registered for the post type).
			add_filter( 'auth_post_meta_' . $key . '_for_' . Firm_Bridge_Matters::POST_TYPE, array( __CLASS__, 'auth_meta' ), 20, 4 );
		}
		foreach ( array( 'added_post_meta', 'updated_post_meta', 'deleted_post_meta' ) as $hook ) {
			add_action( $hook, array( __CLASS__, 'meta_changed' ), 10, 3 );
		}
		add_action( 'add_meta_boxes_' . Firm_Bridge_Matters::POST_TYPE, array( __CLASS__, 'meta_box' ) );
		add_action( 'save_post_' . Firm_Bridge_Matters::POST_TYPE, array( __CLASS__, 'before_save' ), 5 );
		add_action( 'save_post_' . Firm_Bridge_Matters::POST_TYPE, array( __CLASS__, 'after_save' ), 20 );
		add_action( 'admin_init', array( __CLASS__, 'register_setting' ), 20 );
		add_action( 'admin_notices', array( __CLASS__, 'notices' ) );
	}

	/** @return string[] Meta keys that only those who may assign may change. */
	private static function guarded() {
		return array( Firm_Bridge_Matters::META_CLIENTS, Firm_Bridge_Matters::META_PARTNER, Firm_Bridge_Matters::META_ASSOC, Firm_Bridge_Matters::META_PARAS, self::META );
	}

	/**
	 * The wall's meta (REST: edit context, for those who may edit the matter).
	 */
	public static function register() {
		register_post_meta(
			Firm_Bridge_Matters::POST_TYPE,
			self::META,
			array(
				'type'              => 'array',
				'single'            => true,
				'default'           => array(),
				'sanitize_callback' => array( 'Firm_Bridge_Mapper', 'ids' ),
				'auth_callback'     => static fn( $allowed, $key, $post_id ) => current_user_can( 'edit_post', $post_id ),
				'show_in_rest'      => array( 'schema' => array( 'items' => array( 'type' => 'integer' ) ) ),
			)
		);
	}

	/**
	 * @param int $post_id Matter id.
	 * @return int[] People on the matter's wall.
	 */
	public static function walled( $post_id ) {
		return Firm_Bridge_Mapper::ids( get_post_meta( $post_id, self::META, true ) );
	}

	/** @return bool Whether only responsible partners and administrators change assignments. */
	public static function restricted() {
		return (bool) get_option( self::RESTRICTED, false );
	}

	/**
	 * Whether this person may change the matter's assignments and wall now.
	 *
	 * @param int $post_id Matter id.
	 * @param int $user_id User id.
	 * @return bool
	 */
	public static function may_assign( $post_id, $user_id ) {
		if ( ! user_can( $user_id, 'edit_post', $post_id ) ) {
			return false;
		}
		if ( ! self::restricted() || user_can( $user_id, 'manage_options' ) ) {
			return true;
		}
		$partner = Firm_Bridge_Matters::assignments( $post_id )['responsible_partner'];
		// A matter without a responsible partner yet is being opened: its author staffs it.
		return null === $partner || (int) $partner === (int) $user_id;
	}

	/**
	 * People on a matter's wall can neither open, edit nor delete it.
	 *
	 * @param string[] $caps    Primitive capabilities required.
	 * @param string   $cap     Capability asked for.
	 * @param int      $user_id User.
	 * @param array    $args    Its arguments (the post id first).
	 * @return string[]
	 */
	public static function walled_caps( $caps, $cap, $user_id, $args ) {
		if ( in_array( $cap, array( 'edit_post', 'read_post', 'delete_post' ), true ) && ! empty( $args[0] )
			&& Firm_Bridge_Matters::POST_TYPE === get_post_type( (int) $args[0] )
			&& in_array( (int) $user_id, self::walled( (int) $args[0] ), true ) ) {
			$caps[] = 'do_not_allow';
		}
		return $caps;
	}

	/**
	 * REST and every other checked path: assignment and wall meta only for those who may assign.
	 *
	 * @param bool   $allowed  Allowed so far.
	 * @param string $meta_key Key.
	 * @param int    $post_id  Matter id.
	 * @param int    $user_id  User.
	 * @return bool
	 */
	public static function auth_meta( $allowed, $meta_key, $post_id, $user_id ) {
		return $allowed && self::may_assign( (int) $post_id, (int) $user_id );
	}

	/**
	 * A changed wall is sent to the bridge like any other change of the matter.
	 *
	 * @param int    $meta_id  Meta row id(s).
	 * @param int    $post_id  Post id.
	 * @param string $meta_key Key.
	 */
	public static function meta_changed( $meta_id, $post_id, $meta_key ) {
		if ( self::META === $meta_key && Firm_Bridge_Matters::POST_TYPE === get_post_type( $post_id ) ) {
			Firm_Bridge_Sync::matter( (int) $post_id );
		}
	}

	// --- the edit screen -----------------------------------------------------------------

	/**
	 * @param WP_Post $post Matter.
	 */
	public static function meta_box( $post ) {
		add_meta_box( 'firm_bridge_wall', __( 'Ethical wall', 'firm-bridge' ), array( __CLASS__, 'box' ), Firm_Bridge_Matters::POST_TYPE, 'normal', 'default' );
	}

	/**
	 * @param WP_Post $post Matter.
	 */
	public static function box( $post ) {
		$id      = (int) $post->ID;
		$wall    = self::walled( $id );
		$may     = self::may_assign( $id, get_current_user_id() );
		$members = Firm_Bridge_People::people_with( array( 'partner', 'associate', 'paralegal', 'assistant' ) );
		wp_nonce_field( self::NONCE . '_' . $id, self::NONCE_FIELD );
		printf( '<p><label for="%1$s">%2$s</label></p>', esc_attr( self::FIELD ), esc_html__( 'People who may never be assigned to this matter:', 'firm-bridge' ) );
		printf( '<select name="%1$s[]" id="%1$s" multiple size="6" %2$s>', esc_attr( self::FIELD ), disabled( $may, false, false ) );
		foreach ( $members as $p ) {
			printf( '<option value="%s"%s>%s</option>', esc_attr( (string) $p->ID ), selected( in_array( (int) $p->ID, $wall, true ), true, false ), esc_html( $p->display_name ) );
		}
		echo '</select>';
		echo '<p class="description">' . esc_html__( 'They cannot open this matter, and are never added to its room. Someone taken off the wall can be assigned in a later save.', 'firm-bridge' ) . '</p>';
		if ( ! $may ) {
			echo '<p class="description">' . esc_html__( 'Only the responsible partner and administrators change this matter\'s assignments and wall.', 'firm-bridge' ) . '</p>';
		}
	}

	/**
	 * Before the matter's own box is saved: what it was, and whether this person may change it.
	 *
	 * @param int $post_id Matter id.
	 */
	public static function before_save( $post_id ) {
		if ( ! isset( $_POST[ Firm_Bridge_Matters::NONCE_FIELD ] ) || wp_is_post_revision( $post_id ) || wp_is_post_autosave( $post_id ) ) { // phpcs:ignore WordPress.Security.NonceVerification -- the matters box checks it.
			return;
		}
		self::$before[ (int) $post_id ] = array(
			'assignments' => Firm_Bridge_Matters::assignments( $post_id ),
			'wall'        => self::walled( $post_id ),
			'allowed'     => self::may_assign( (int) $post_id, get_current_user_id() ),
		);
	}

	/**
	 * After the matter's own box is saved: the wall from this box, assignment changes undone for
	 * someone who may not make them, and walled-off people taken out of the assignments.
	 *
	 * @param int $post_id Matter id.
	 */
	public static function after_save( $post_id ) {
		$post_id = (int) $post_id;
		if ( ! isset( self::$before[ $post_id ] ) ) {
			return;
		}
		$before = self::$before[ $post_id ];
		unset( self::$before[ $post_id ] );
		$notes = array();
		if ( ! $before['allowed'] ) {
			if ( Firm_Bridge_Matters::assignments( $post_id ) !== $before['assignments'] ) {
				Firm_Bridge_Matters::set_assignments( $post_id, $before['assignments'] );
				$notes[] = __( 'Assignments were not changed: only the responsible partner and administrators change this matter\'s assignments.', 'firm-bridge' );
			}
			self::note( $notes );
			return;
		}
		$wall = $before['wall'];
		if ( isset( $_POST[ self::NONCE_FIELD ] ) ) {
			if ( ! wp_verify_nonce( sanitize_text_field( wp_unslash( $_POST[ self::NONCE_FIELD ] ) ), self::NONCE . '_' . $post_id ) ) {
				wp_die( esc_html__( 'The form has expired. Go back, reload the page and try again.', 'firm-bridge' ), 403 );
			}
			$wall = isset( $_POST[ self::FIELD ] ) ? Firm_Bridge_Mapper::ids( (array) wp_unslash( $_POST[ self::FIELD ] ) ) : array(); // phpcs:ignore WordPress.Security.ValidatedSanitizedInput.InputNotSanitized -- ids() keeps digits only.
			update_post_meta( $post_id, self::META, $wall );
		}
		// Taken off the wall in this save: assigned in a later one (the bridge wants it so).
		$out = array_merge( $wall, array_diff( $before['wall'], $wall ) );
		$a   = Firm_Bridge_Matters::assignments( $post_id );
		$new = $a;
		foreach ( array( 'clients', 'associates', 'paralegals' ) as $field ) {
			$new[ $field ] = array_values( array_diff( $a[ $field ], $out ) );
		}
		if ( in_array( (int) $a['responsible_partner'], $out, true ) ) {
			$new['responsible_partner'] = null;
		}
		if ( $new !== $a ) {
			Firm_Bridge_Matters::set_assignments( $post_id, $new );
			$notes[] = __( 'People on the ethical wall, or taken off it in this save, were not assigned. Assign someone taken off the wall in a later save.', 'firm-bridge' );
		}
		self::note( $notes );
	}

	/**
	 * @param string[] $notes Messages for the next screen this person sees.
	 */
	private static function note( array $notes ) {
		if ( $notes ) {
			set_transient( 'firm_bridge_wall_notes_' . get_current_user_id(), $notes, 300 );
		}
	}

	/**
	 * Shows what a save did not do.
	 */
	public static function notices() {
		$key   = 'firm_bridge_wall_notes_' . get_current_user_id();
		$notes = get_transient( $key );
		if ( ! is_array( $notes ) ) {
			return;
		}
		delete_transient( $key );
		foreach ( $notes as $note ) {
			echo '<div class="notice notice-warning firm-bridge-wall-notice"><p>' . esc_html( (string) $note ) . '</p></div>';
		}
	}

	// --- the firm's setting --------------------------------------------------------------

	/**
	 * "Who assigns" on the plugin's Settings screen.
	 */
	public static function register_setting() {
		register_setting(
			Firm_Bridge_Settings_Page::GROUP,
			self::RESTRICTED,
			array(
				'type'              => 'boolean',
				'sanitize_callback' => static fn( $v ) => ! empty( $v ),
				'default'           => false,
			)
		);
		add_settings_section( 'firm_bridge_walls', __( 'Who assigns', 'firm-bridge' ), '__return_false', Firm_Bridge_Admin::SETTINGS );
		add_settings_field( self::RESTRICTED, __( 'Matter assignments', 'firm-bridge' ), array( __CLASS__, 'setting_field' ), Firm_Bridge_Admin::SETTINGS, 'firm_bridge_walls', array( 'label_for' => self::RESTRICTED ) );
	}

	/**
	 * The setting's checkbox.
	 */
	public static function setting_field() {
		printf(
			'<label><input type="checkbox" name="%1$s" id="%1$s" value="1" %2$s /> %3$s</label>',
			esc_attr( self::RESTRICTED ),
			checked( self::restricted(), true, false ),
			esc_html__( 'Only a matter\'s responsible partner and administrators may change its assignments and its ethical wall', 'firm-bridge' )
		);
	}
}
