<?php
/**
 * The Matter post type: number, title, clients, responsible partner, associates, paralegals,
 * privileged flag, status and retention fields; its edit box, list columns and filters.
 *
 * @package Firm_Bridge
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * Matter-side sync.
 */
final class Firm_Bridge_Matters {

	const POST_TYPE     = 'firm_matter';
	const META_NUMBER   = 'firm_matter_number';
	const META_CLIENTS  = 'firm_matter_clients';
	const META_PARTNER  = 'firm_matter_responsible_partner';
	const META_ASSOC    = 'firm_matter_associates';
	const META_PARAS    = 'firm_matter_paralegals';
	const META_PRIV     = 'firm_matter_privileged';
	const META_STATUS   = 'firm_matter_status';
	const META_HOLD     = 'firm_matter_legal_hold';
	/** Retention periods in days (empty: the bridge's default), as bridge/audit applies them. */
	const META_RETENTION = array(
		'retention_open_days'   => 'firm_matter_retention_open_days',
		'retention_closed_days' => 'firm_matter_retention_closed_days',
		'retention_media_days'  => 'firm_matter_retention_media_days',
	);
	/** One row per assigned person: lets "matters of person N" be a plain meta query. */
	const META_INDEX = '_firm_matter_person';
	const META_KNOWN = '_firm_bridge_known';
	const META_HASH  = '_firm_bridge_hash';
	const NONCE      = 'firm_bridge_matter';
	const NONCE_FIELD = '_firm_bridge_matter_nonce';

	/** Meta whose change changes what the bridge holds. */
	const TRACKED_META = array( self::META_NUMBER, self::META_CLIENTS, self::META_PARTNER, self::META_ASSOC, self::META_PARAS, self::META_PRIV, self::META_STATUS, self::META_HOLD, 'firm_matter_retention_open_days', 'firm_matter_retention_closed_days', 'firm_matter_retention_media_days' );

	/**
	 * Hooks.
	 */
	public static function hooks() {
		add_action( 'init', array( __CLASS__, 'register' ) );
		add_action( 'save_post_' . self::POST_TYPE, array( __CLASS__, 'saved' ), 10, 2 );
		add_action( 'transition_post_status', array( __CLASS__, 'transition' ), 10, 3 );
		add_action( 'trashed_post', array( __CLASS__, 'changed' ) );
		add_action( 'untrashed_post', array( __CLASS__, 'changed' ) );
		add_action( 'before_delete_post', array( __CLASS__, 'deleting' ) );
		foreach ( array( 'added_post_meta', 'updated_post_meta', 'deleted_post_meta' ) as $hook ) {
			add_action( $hook, array( __CLASS__, 'meta_changed' ), 10, 3 );
		}
		add_action( 'add_meta_boxes_' . self::POST_TYPE, array( __CLASS__, 'meta_boxes' ) );
		add_filter( 'manage_' . self::POST_TYPE . '_posts_columns', array( __CLASS__, 'columns' ) );
		add_action( 'manage_' . self::POST_TYPE . '_posts_custom_column', array( __CLASS__, 'column' ), 10, 2 );
		add_filter( 'manage_edit-' . self::POST_TYPE . '_sortable_columns', array( __CLASS__, 'sortable' ) );
		add_action( 'restrict_manage_posts', array( __CLASS__, 'filters' ), 10, 1 );
		add_action( 'pre_get_posts', array( __CLASS__, 'apply_filters' ) );
		add_action( 'admin_notices', array( __CLASS__, 'notices' ) );
		add_filter( 'post_updated_messages', array( __CLASS__, 'updated_messages' ) );
		add_filter( 'enter_title_here', array( __CLASS__, 'title_placeholder' ), 10, 2 );
		add_filter( 'bulk_post_updated_messages', array( __CLASS__, 'bulk_messages' ), 10, 2 );
		add_action( 'admin_enqueue_scripts', array( __CLASS__, 'box_script' ) );
	}

	/**
	 * Post type and meta.
	 */
	public static function register() {
		register_post_type(
			self::POST_TYPE,
			array(
				'labels'                => array(
					'name'          => __( 'Matters', 'firm-bridge' ),
					'singular_name' => __( 'Matter', 'firm-bridge' ),
					'add_new_item'  => __( 'Add New Matter', 'firm-bridge' ),
					'edit_item'     => __( 'Edit Matter', 'firm-bridge' ),
					'search_items'  => __( 'Search Matters', 'firm-bridge' ),
					'not_found'     => __( 'No matters found.', 'firm-bridge' ),
				),
				'public'                => false,
				'show_ui'               => true,
				'show_in_menu'          => true,
				'menu_icon'             => 'dashicons-portfolio',
				'supports'              => array( 'title', 'custom-fields' ),
				'capability_type'       => array( 'firm_matter', 'firm_matters' ),
				'map_meta_cap'          => true,
				'show_in_rest'          => true,
				'rest_base'             => 'firm_matters',
				'rest_controller_class' => 'Firm_Bridge_Matters_Controller',
				// A departing person's user account may be deleted; their matters stay.
				'delete_with_user'      => false,
			)
		);
		$auth = static function ( $allowed, $meta_key, $post_id ) {
			return current_user_can( 'edit_post', $post_id );
		};
		$ids  = array(
			'type'              => 'array',
			'single'            => true,
			'default'           => array(),
			'sanitize_callback' => array( 'Firm_Bridge_Mapper', 'ids' ),
			'auth_callback'     => $auth,
			'show_in_rest'      => array( 'schema' => array( 'items' => array( 'type' => 'integer' ) ) ),
		);
		foreach ( array( self::META_CLIENTS, self::META_ASSOC, self::META_PARAS ) as $key ) {
			register_post_meta( self::POST_TYPE, $key, $ids );
		}
		register_post_meta(
			self::POST_TYPE,
			self::META_PARTNER,
			array(
				'type'              => 'integer',
				'single'            => true,
				'default'           => 0,
				'sanitize_callback' => 'absint',
				'auth_callback'     => $auth,
				'show_in_rest'      => true,
			)
		);
		register_post_meta(
			self::POST_TYPE,
			self::META_NUMBER,
			array(
				'type'              => 'string',
				'single'            => true,
				'default'           => '',
				'sanitize_callback' => 'sanitize_text_field',
				'auth_callback'     => $auth,
				'show_in_rest'      => true,
			)
		);
		register_post_meta(
			self::POST_TYPE,
			self::META_STATUS,
			array(
				'type'              => 'string',
				'single'            => true,
				'default'           => 'open',
				'sanitize_callback' => static fn( $v ) => 'closed' === $v ? 'closed' : 'open',
				'auth_callback'     => $auth,
				'show_in_rest'      => array( 'schema' => array( 'enum' => array( 'open', 'closed' ) ) ),
			)
		);
		foreach ( array( self::META_PRIV, self::META_HOLD ) as $key ) {
			register_post_meta(
				self::POST_TYPE,
				$key,
				array(
					'type'          => 'boolean',
					'single'        => true,
					'default'       => false,
					'auth_callback' => $auth,
					'show_in_rest'  => true,
				)
			);
		}
		foreach ( self::META_RETENTION as $key ) {
			register_post_meta(
				self::POST_TYPE,
				$key,
				array(
					'type'              => 'number',
					'single'            => true,
					'default'           => 0,
					'sanitize_callback' => static fn( $v ) => Firm_Bridge_Mapper::days( $v ) ?? 0,
					'auth_callback'     => $auth,
					'show_in_rest'      => array( 'schema' => array( 'minimum' => 0 ) ),
				)
			);
		}
	}

	/**
	 * @param int     $post_id Post id.
	 * @param WP_Post $post    Post.
	 */
	public static function saved( $post_id, $post ) {
		if ( wp_is_post_revision( $post_id ) || wp_is_post_autosave( $post_id ) ) {
			return;
		}
		self::save_box( $post_id );
		Firm_Bridge_Sync::matter( (int) $post_id );
	}

	/**
	 * @param string  $new  New status.
	 * @param string  $old  Old status.
	 * @param WP_Post $post Post.
	 */
	public static function transition( $new, $old, $post ) {
		if ( self::POST_TYPE === $post->post_type && $new !== $old ) {
			Firm_Bridge_Sync::matter( (int) $post->ID );
		}
	}

	/**
	 * @param int $post_id Post id.
	 */
	public static function changed( $post_id ) {
		if ( self::POST_TYPE === get_post_type( $post_id ) ) {
			Firm_Bridge_Sync::matter( (int) $post_id );
		}
	}

	/**
	 * @param int    $meta_id  Meta row id(s).
	 * @param int    $post_id  Post id.
	 * @param string $meta_key Key.
	 */
	public static function meta_changed( $meta_id, $post_id, $meta_key ) {
		if ( in_array( $meta_key, self::TRACKED_META, true ) && self::POST_TYPE === get_post_type( $post_id ) ) {
			Firm_Bridge_Sync::matter( (int) $post_id );
		}
	}

	/**
	 * A matter deleted for good: its room is closed (read-only, readable until retention ends).
	 * Sent now, since the post is gone by the end of the request.
	 *
	 * @param int $post_id Post id.
	 */
	public static function deleting( $post_id ) {
		$post = get_post( $post_id );
		if ( ! $post || self::POST_TYPE !== $post->post_type || '1' !== (string) get_post_meta( $post_id, self::META_KNOWN, true ) ) {
			return;
		}
		$data                = self::matter_array( $post );
		$data['post_status'] = 'trash';
		$mapped              = Firm_Bridge_Mapper::matter( $data, Firm_Bridge_People::directory( self::assigned_ids( $data ) ) );
		Firm_Bridge_Outbox::enqueue( 'matter', $post_id, 'PUT', '/_firm/v1/matters/' . (int) $post_id, $mapped['body'], $mapped['deps'], sprintf( 'Matter %s deleted (closed)', $mapped['body']['number'] ) );
	}

	/**
	 * The matter as the mapper reads it.
	 *
	 * @param WP_Post $post Post.
	 * @return array
	 */
	public static function matter_array( WP_Post $post ) {
		$id   = (int) $post->ID;
		$data = array(
			'id'          => $id,
			'number'      => get_post_meta( $id, self::META_NUMBER, true ),
			'title'       => $post->post_title,
			'post_status' => $post->post_status,
			'status'      => get_post_meta( $id, self::META_STATUS, true ),
			'privileged'  => get_post_meta( $id, self::META_PRIV, true ),
			'legal_hold'  => get_post_meta( $id, self::META_HOLD, true ),
			'walled_off'  => Firm_Bridge_Walls::walled( $id ),
		);
		foreach ( self::META_RETENTION as $field => $key ) {
			$data[ $field ] = get_post_meta( $id, $key, true );
		}
		return array_merge( $data, self::assignments( $id ) );
	}

	/**
	 * @param int $post_id Matter id.
	 * @return array array{clients:int[], responsible_partner:?int, associates:int[], paralegals:int[]}
	 */
	public static function assignments( $post_id ) {
		$partner = absint( get_post_meta( $post_id, self::META_PARTNER, true ) );
		return array(
			'clients'             => Firm_Bridge_Mapper::ids( get_post_meta( $post_id, self::META_CLIENTS, true ) ),
			'responsible_partner' => $partner > 0 ? $partner : null,
			'associates'          => Firm_Bridge_Mapper::ids( get_post_meta( $post_id, self::META_ASSOC, true ) ),
			'paralegals'          => Firm_Bridge_Mapper::ids( get_post_meta( $post_id, self::META_PARAS, true ) ),
		);
	}

	/**
	 * @param int   $post_id Matter id.
	 * @param array $a       Assignments as assignments() returns them.
	 */
	public static function set_assignments( $post_id, array $a ) {
		update_post_meta( $post_id, self::META_CLIENTS, Firm_Bridge_Mapper::ids( $a['clients'] ) );
		update_post_meta( $post_id, self::META_PARTNER, (int) ( $a['responsible_partner'] ?? 0 ) );
		update_post_meta( $post_id, self::META_ASSOC, Firm_Bridge_Mapper::ids( $a['associates'] ) );
		update_post_meta( $post_id, self::META_PARAS, Firm_Bridge_Mapper::ids( $a['paralegals'] ) );
		self::reindex( $post_id );
	}

	/**
	 * @param array $data Matter array.
	 * @return int[]
	 */
	private static function assigned_ids( array $data ) {
		return array_merge(
			Firm_Bridge_Mapper::ids( $data['clients'] ),
			Firm_Bridge_Mapper::ids( $data['responsible_partner'] ),
			Firm_Bridge_Mapper::ids( $data['associates'] ),
			Firm_Bridge_Mapper::ids( $data['paralegals'] )
		);
	}

	/**
	 * Rebuilds the person index of a matter.
	 *
	 * @param int $post_id Matter id.
	 */
	public static function reindex( $post_id ) {
		$want = self::assigned_ids( self::assignments( $post_id ) );
		$have = array_map( 'intval', (array) get_post_meta( $post_id, self::META_INDEX, false ) );
		sort( $want );
		sort( $have );
		if ( $want === $have ) {
			return;
		}
		delete_post_meta( $post_id, self::META_INDEX );
		foreach ( array_unique( $want ) as $pid ) {
			add_post_meta( $post_id, self::META_INDEX, (int) $pid );
		}
	}

	/**
	 * Matters a person is assigned to, in any status.
	 *
	 * @param int   $person_id User id.
	 * @param array $statuses  Post statuses.
	 * @return int[]
	 */
	public static function ids_for_person( $person_id, $statuses = array( 'publish', 'private', 'draft', 'pending', 'future', 'trash' ) ) {
		$query = new WP_Query(
			array(
				'post_type'      => self::POST_TYPE,
				'post_status'    => $statuses,
				'fields'         => 'ids',
				'posts_per_page' => -1,
				'no_found_rows'  => true,
				'meta_query'     => array( // phpcs:ignore WordPress.DB.SlowDBQuery
					array(
						'key'   => self::META_INDEX,
						'value' => (string) (int) $person_id,
					),
				),
			)
		);
		return array_map( 'intval', $query->posts );
	}

	/**
	 * The body the bridge would receive for this matter now.
	 *
	 * @param int $post_id Matter id.
	 * @return array|null Mapper result.
	 */
	public static function mapped( $post_id ) {
		$post = get_post( $post_id );
		if ( ! $post || self::POST_TYPE !== $post->post_type ) {
			return null;
		}
		$data = self::matter_array( $post );
		return Firm_Bridge_Mapper::matter( $data, Firm_Bridge_People::directory( self::assigned_ids( $data ) ) );
	}

	/**
	 * Writes an outbox row for the matter's current state, unless it is what was sent last.
	 * Drafts are not sent; a matter the bridge knows that leaves publication is closed.
	 *
	 * @param int  $post_id Matter id.
	 * @param bool $force   Write even if unchanged (resync).
	 * @return int|null Row id.
	 */
	public static function enqueue( $post_id, $force = false ) {
		$post = get_post( $post_id );
		if ( ! $post || self::POST_TYPE !== $post->post_type || 'auto-draft' === $post->post_status ) {
			return null;
		}
		self::reindex( $post_id );
		$known = '1' === (string) get_post_meta( $post_id, self::META_KNOWN, true );
		$live  = in_array( $post->post_status, array( 'publish', 'private' ), true );
		if ( ! $live && ! $known ) {
			return null;
		}
		$mapped = self::mapped( $post_id );
		$raw    = (string) wp_json_encode( $mapped['body'], JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE );
		$hash   = md5( $raw );
		if ( $mapped['dropped'] ) {
			set_transient( 'firm_bridge_dropped_' . $post_id, $mapped['dropped'], DAY_IN_SECONDS );
		} else {
			delete_transient( 'firm_bridge_dropped_' . $post_id );
		}
		if ( ! $force && $known && get_post_meta( $post_id, self::META_HASH, true ) === $hash ) {
			return null;
		}
		$summary = sprintf( 'Matter %s (%s, %d assigned)', $mapped['body']['number'], $mapped['body']['status'], count( $mapped['deps'] ) );
		$row     = Firm_Bridge_Outbox::enqueue( 'matter', $post_id, 'PUT', '/_firm/v1/matters/' . (int) $post_id, null, $mapped['deps'], $summary, $raw );
		update_post_meta( $post_id, self::META_KNOWN, '1' );
		update_post_meta( $post_id, self::META_HASH, $hash );
		return $row;
	}

	// --- wp-admin --------------------------------------------------------------------------

	/**
	 * @param WP_Post $post Post.
	 */
	public static function meta_boxes( $post ) {
		// The fields have their own box; raw custom fields would show serialized id lists.
		remove_meta_box( 'postcustom', self::POST_TYPE, 'normal' );
		add_meta_box( 'firm_bridge_matter', __( 'Matter', 'firm-bridge' ), array( __CLASS__, 'box' ), self::POST_TYPE, 'normal', 'high' );
	}

	/**
	 * The matter's fields on its edit screen.
	 *
	 * @param WP_Post $post Post.
	 */
	public static function box( $post ) {
		$id   = (int) $post->ID;
		$a    = self::assignments( $id );
		$priv = Firm_Bridge_Mapper::truthy( get_post_meta( $id, self::META_PRIV, true ) );
		$hold = Firm_Bridge_Mapper::truthy( get_post_meta( $id, self::META_HOLD, true ) );
		wp_nonce_field( self::NONCE . '_' . $id, self::NONCE_FIELD );
		$select = static function ( $name, array $people, array $chosen, $multiple ) {
			printf( '<select name="%s" id="%s" %s>', esc_attr( $name . ( $multiple ? '[]' : '' ) ), esc_attr( $name ), $multiple ? 'multiple size="5"' : '' );
			if ( ! $multiple ) {
				echo '<option value="0">' . esc_html__( '— None —', 'firm-bridge' ) . '</option>';
			}
			foreach ( $people as $p ) {
				printf( '<option value="%s"%s>%s</option>', esc_attr( (string) $p->ID ), selected( in_array( (int) $p->ID, $chosen, true ), true, false ), esc_html( $p->display_name ) );
			}
			echo '</select>';
			if ( $multiple ) {
				echo '<p class="description">' . esc_html( Firm_Bridge_People::multiple_hint() ) . '</p>';
			}
		};
		?>
		<table class="form-table" role="presentation">
			<tr><th><label for="firm_matter_number"><?php esc_html_e( 'Matter number', 'firm-bridge' ); ?></label></th>
				<td><input type="text" class="regular-text" name="firm_matter_number" id="firm_matter_number" value="<?php echo esc_attr( (string) get_post_meta( $id, self::META_NUMBER, true ) ); ?>" /></td></tr>
			<tr><th><label for="firm_matter_clients"><?php esc_html_e( 'Clients', 'firm-bridge' ); ?></label></th>
				<td><?php $select( 'firm_matter_clients', Firm_Bridge_People::people_with( array( 'client' ) ), $a['clients'], true ); ?></td></tr>
			<tr><th><label for="firm_matter_responsible_partner"><?php esc_html_e( 'Responsible partner', 'firm-bridge' ); ?></label></th>
				<td><?php $select( 'firm_matter_responsible_partner', Firm_Bridge_People::people_with( array( 'partner' ) ), null === $a['responsible_partner'] ? array() : array( $a['responsible_partner'] ), false ); ?></td></tr>
			<tr><th><label for="firm_matter_associates"><?php esc_html_e( 'Associates', 'firm-bridge' ); ?></label></th>
				<td><?php $select( 'firm_matter_associates', Firm_Bridge_People::people_with( array( 'associate', 'partner' ) ), $a['associates'], true ); ?></td></tr>
			<tr><th><label for="firm_matter_paralegals"><?php esc_html_e( 'Paralegals', 'firm-bridge' ); ?></label></th>
				<td><?php $select( 'firm_matter_paralegals', Firm_Bridge_People::people_with( array( 'paralegal' ) ), $a['paralegals'], true ); ?></td></tr>
			<tr><th><?php esc_html_e( 'Privileged', 'firm-bridge' ); ?></th>
				<td><label><input type="checkbox" name="firm_matter_privileged" id="firm_matter_privileged" value="1" aria-describedby="firm-privileged-note" <?php checked( $priv ); ?> /> <?php esc_html_e( 'Privileged (paralegals stay out of the room)', 'firm-bridge' ); ?></label>
				<?php self::privileged_note( $priv, $a['paralegals'] ); ?></td></tr>
			<tr><th><label for="firm_matter_status"><?php esc_html_e( 'Status', 'firm-bridge' ); ?></label></th>
				<td><select name="firm_matter_status" id="firm_matter_status">
					<option value="open" <?php selected( 'closed' !== get_post_meta( $id, self::META_STATUS, true ) ); ?>><?php esc_html_e( 'Open', 'firm-bridge' ); ?></option>
					<option value="closed" <?php selected( 'closed' === get_post_meta( $id, self::META_STATUS, true ) ); ?>><?php esc_html_e( 'Closed (room becomes read-only)', 'firm-bridge' ); ?></option>
				</select></td></tr>
			<?php
			$labels = array(
				'retention_open_days'   => __( 'Keep messages while open (days)', 'firm-bridge' ),
				'retention_closed_days' => __( 'Keep everything after closing (days)', 'firm-bridge' ),
				'retention_media_days'  => __( 'Keep attachments (days)', 'firm-bridge' ),
			);
			foreach ( self::META_RETENTION as $field => $key ) :
				$days = Firm_Bridge_Mapper::days( get_post_meta( $id, $key, true ) );
				?>
			<tr><th><label for="<?php echo esc_attr( $key ); ?>"><?php echo esc_html( $labels[ $field ] ); ?></label></th>
				<td><input type="number" min="0" step="any" class="small-text" name="<?php echo esc_attr( $key ); ?>" id="<?php echo esc_attr( $key ); ?>" value="<?php echo esc_attr( null === $days ? '' : (string) $days ); ?>" />
				<span class="description"><?php esc_html_e( 'Empty: the firm\'s default.', 'firm-bridge' ); ?></span></td></tr>
			<?php endforeach; ?>
			<tr><th><?php esc_html_e( 'Legal hold', 'firm-bridge' ); ?></th>
				<td><label><input type="checkbox" name="firm_matter_legal_hold" value="1" <?php checked( $hold ); ?> /> <?php esc_html_e( 'Retention may not delete this matter\'s data', 'firm-bridge' ); ?></label></td></tr>
		</table>
		<?php
		$row = Firm_Bridge_Outbox::latest( 'matter', $id );
		if ( $row ) {
			echo '<p>' . esc_html( sprintf( /* translators: 1: status, 2: error */ __( 'Bridge: %1$s %2$s', 'firm-bridge' ), $row['status'], (string) $row['last_error'] ) ) . '</p>';
		}
	}

	/**
	 * Said next to Privileged while paralegals are assigned: they are kept out of the room
	 * (assets/matter.js keeps it current as the form changes).
	 *
	 * @param bool  $privileged Whether the matter is privileged.
	 * @param int[] $paralegals Assigned paralegals.
	 */
	private static function privileged_note( $privileged, array $paralegals ) {
		$names = array();
		foreach ( $paralegals as $id ) {
			$u = get_userdata( $id );
			if ( $u ) {
				$names[] = $u->display_name;
			}
		}
		$show = $privileged && $names;
		printf(
			'<p class="firm-privileged-note description" id="firm-privileged-note" role="status" data-template="%s"%s>%s</p>',
			/* translators: %s: the paralegals' names */
			esc_attr( __( 'Paralegals stay out of a privileged matter\'s room: %s will not be in it, and will not see it in the portal.', 'firm-bridge' ) ),
			$show ? '' : ' hidden',
			/* translators: %s: the paralegals' names */
			esc_html( $show ? sprintf( __( 'Paralegals stay out of a privileged matter\'s room: %s will not be in it, and will not see it in the portal.', 'firm-bridge' ), implode( ', ', $names ) ) : '' )
		);
	}

	/**
	 * The matter screen's script (the privileged note).
	 *
	 * @param string $hook Admin page.
	 */
	public static function box_script( $hook ) {
		$screen = function_exists( 'get_current_screen' ) ? get_current_screen() : null;
		if ( in_array( $hook, array( 'post.php', 'post-new.php' ), true ) && $screen && self::POST_TYPE === $screen->post_type ) {
			wp_enqueue_script( 'firm-bridge-matter', plugins_url( 'assets/matter.js', FIRM_BRIDGE_FILE ), array(), FIRM_BRIDGE_VERSION, true );
		}
	}

	/**
	 * @param string  $text Placeholder of the title field.
	 * @param WP_Post $post Post.
	 * @return string
	 */
	public static function title_placeholder( $text, $post ) {
		return self::POST_TYPE === $post->post_type ? __( 'Matter title (people in the matter see it)', 'firm-bridge' ) : $text;
	}

	/**
	 * The edit screen's notices in the field's words.
	 *
	 * @param array $messages Messages per post type.
	 * @return array
	 */
	public static function updated_messages( $messages ) {
		$messages[ self::POST_TYPE ] = array(
			0  => '',
			1  => __( 'Matter updated. Its chat room follows within moments.', 'firm-bridge' ),
			2  => __( 'Matter updated.', 'firm-bridge' ),
			3  => __( 'Matter updated.', 'firm-bridge' ),
			4  => __( 'Matter updated. Its chat room follows within moments.', 'firm-bridge' ),
			5  => __( 'Matter restored.', 'firm-bridge' ),
			6  => __( 'Matter opened: its chat room is being set up for the people assigned.', 'firm-bridge' ),
			7  => __( 'Matter saved.', 'firm-bridge' ),
			8  => __( 'Matter submitted for review. It has no chat room until it is opened.', 'firm-bridge' ),
			9  => __( 'Matter scheduled. Its chat room is set up when it opens.', 'firm-bridge' ),
			10 => __( 'Draft matter updated. Drafts have no chat room.', 'firm-bridge' ),
		);
		return $messages;
	}

	/**
	 * The list's notices in the field's words.
	 *
	 * @param array $messages Messages per post type.
	 * @param array $counts   How many of each.
	 * @return array
	 */
	public static function bulk_messages( $messages, $counts ) {
		// phpcs:disable WordPress.WP.I18n.MissingTranslatorsComment -- %s is the number of matters.
		$messages[ self::POST_TYPE ] = array(
			'updated'   => _n( '%s matter updated.', '%s matters updated.', $counts['updated'], 'firm-bridge' ),
			'locked'    => _n( '%s matter not updated: somebody is editing it.', '%s matters not updated: somebody is editing them.', $counts['locked'], 'firm-bridge' ),
			'deleted'   => _n( '%s matter permanently deleted; its chat room stays closed.', '%s matters permanently deleted; their chat rooms stay closed.', $counts['deleted'], 'firm-bridge' ),
			'trashed'   => _n( '%s matter moved to the Trash; its chat room is closed (read-only).', '%s matters moved to the Trash; their chat rooms are closed (read-only).', $counts['trashed'], 'firm-bridge' ),
			'untrashed' => _n( '%s matter restored from the Trash as a draft; its chat room stays closed until it is published again.', '%s matters restored from the Trash as drafts; their chat rooms stay closed until they are published again.', $counts['untrashed'], 'firm-bridge' ),
		);
		// phpcs:enable
		return $messages;
	}

	/**
	 * Saves the box's fields. Only from the edit form (its nonce present); REST and quick edit
	 * change meta through their own checked paths.
	 *
	 * @param int $post_id Post id.
	 */
	private static function save_box( $post_id ) {
		if ( ! isset( $_POST[ self::NONCE_FIELD ] ) ) {
			return;
		}
		if ( ! wp_verify_nonce( sanitize_text_field( wp_unslash( $_POST[ self::NONCE_FIELD ] ) ), self::NONCE . '_' . $post_id ) ) {
			wp_die( esc_html__( 'The form has expired. Go back, reload the page and try again.', 'firm-bridge' ), 403 );
		}
		if ( ! current_user_can( 'edit_post', $post_id ) ) {
			wp_die( esc_html__( 'You may not edit this matter.', 'firm-bridge' ), 403 );
		}
		// phpcs:disable WordPress.Security.ValidatedSanitizedInput.InputNotSanitized -- ids() keeps digits only.
		$ids = static function ( $key ) {
			return isset( $_POST[ $key ] ) ? Firm_Bridge_Mapper::ids( (array) wp_unslash( $_POST[ $key ] ) ) : array();
		};
		// phpcs:enable
		update_post_meta( $post_id, self::META_NUMBER, isset( $_POST['firm_matter_number'] ) ? sanitize_text_field( wp_unslash( $_POST['firm_matter_number'] ) ) : '' );
		self::set_assignments(
			$post_id,
			array(
				'clients'             => $ids( 'firm_matter_clients' ),
				'responsible_partner' => isset( $_POST['firm_matter_responsible_partner'] ) ? absint( wp_unslash( $_POST['firm_matter_responsible_partner'] ) ) : 0,
				'associates'          => $ids( 'firm_matter_associates' ),
				'paralegals'          => $ids( 'firm_matter_paralegals' ),
			)
		);
		update_post_meta( $post_id, self::META_PRIV, ! empty( $_POST['firm_matter_privileged'] ) );
		update_post_meta( $post_id, self::META_STATUS, ( isset( $_POST['firm_matter_status'] ) && 'closed' === $_POST['firm_matter_status'] ) ? 'closed' : 'open' );
		foreach ( self::META_RETENTION as $key ) {
			$days = isset( $_POST[ $key ] ) ? Firm_Bridge_Mapper::days( sanitize_text_field( wp_unslash( $_POST[ $key ] ) ) ) : null;
			update_post_meta( $post_id, $key, null === $days ? 0 : $days );
		}
		update_post_meta( $post_id, self::META_HOLD, ! empty( $_POST['firm_matter_legal_hold'] ) );
	}

	/**
	 * Warns on the edit screen about assignments that were not sent.
	 */
	public static function notices() {
		$screen = function_exists( 'get_current_screen' ) ? get_current_screen() : null;
		if ( ! $screen || self::POST_TYPE !== $screen->post_type || 'post' !== $screen->base ) {
			return;
		}
		$post_id = isset( $_GET['post'] ) ? absint( $_GET['post'] ) : 0; // phpcs:ignore WordPress.Security.NonceVerification
		$dropped = $post_id ? get_transient( 'firm_bridge_dropped_' . $post_id ) : false;
		if ( ! $dropped || ! current_user_can( 'edit_post', $post_id ) ) {
			return;
		}
		echo '<div class="notice notice-warning"><p>' . esc_html__( 'Some assignments were not sent to the chat bridge:', 'firm-bridge' ) . '</p><ul>';
		foreach ( (array) $dropped as $d ) {
			$user = get_userdata( (int) $d['id'] );
			echo '<li>' . esc_html( sprintf( '%s: %s %s', $d['field'], $user ? $user->display_name : '#' . (int) $d['id'], $d['why'] ) ) . '</li>';
		}
		echo '</ul></div>';
	}

	/**
	 * @param array $columns List-table columns.
	 * @return array
	 */
	public static function columns( $columns ) {
		$out = array();
		foreach ( $columns as $key => $label ) {
			if ( 'title' === $key ) {
				$out['firm_number'] = __( 'Number', 'firm-bridge' );
			}
			$out[ $key ] = $label;
			if ( 'title' === $key ) {
				$out['firm_clients']    = __( 'Clients', 'firm-bridge' );
				$out['firm_partner']    = __( 'Responsible partner', 'firm-bridge' );
				$out['firm_status']     = __( 'Status', 'firm-bridge' );
				$out['firm_privileged'] = __( 'Privileged', 'firm-bridge' );
				$out['firm_sync']       = __( 'Chat sync', 'firm-bridge' );
			}
		}
		return $out;
	}

	/**
	 * @param string $column  Column key.
	 * @param int    $post_id Post id.
	 */
	public static function column( $column, $post_id ) {
		$names = static function ( array $ids ) {
			$out = array();
			foreach ( $ids as $id ) {
				$u     = get_userdata( $id );
				$out[] = $u ? $u->display_name : '#' . $id;
			}
			return implode( ', ', $out );
		};
		$a = self::assignments( $post_id );
		switch ( $column ) {
			case 'firm_number':
				echo esc_html( (string) get_post_meta( $post_id, self::META_NUMBER, true ) );
				break;
			case 'firm_clients':
				echo esc_html( $names( $a['clients'] ) );
				break;
			case 'firm_partner':
				echo esc_html( null === $a['responsible_partner'] ? '—' : $names( array( $a['responsible_partner'] ) ) );
				break;
			case 'firm_status':
				echo esc_html( 'closed' === get_post_meta( $post_id, self::META_STATUS, true ) ? __( 'Closed', 'firm-bridge' ) : __( 'Open', 'firm-bridge' ) );
				if ( Firm_Bridge_Mapper::truthy( get_post_meta( $post_id, self::META_HOLD, true ) ) ) {
					echo ' · ' . esc_html__( 'legal hold', 'firm-bridge' );
				}
				break;
			case 'firm_privileged':
				echo Firm_Bridge_Mapper::truthy( get_post_meta( $post_id, self::META_PRIV, true ) ) ? esc_html__( 'Yes', 'firm-bridge' ) : esc_html__( 'No', 'firm-bridge' );
				break;
			case 'firm_sync':
				$row = Firm_Bridge_Outbox::latest( 'matter', $post_id );
				echo esc_html( $row ? $row['status'] : '—' );
				break;
		}
	}

	/**
	 * @param array $columns Sortable columns.
	 * @return array
	 */
	public static function sortable( $columns ) {
		$columns['firm_number'] = 'firm_number';
		return $columns;
	}

	/**
	 * Status, privilege and responsible-partner filters above the list.
	 *
	 * @param string $post_type Listed post type.
	 */
	public static function filters( $post_type ) {
		if ( self::POST_TYPE !== $post_type ) {
			return;
		}
		// phpcs:disable WordPress.Security.NonceVerification -- read-only list filters.
		$status  = isset( $_GET['firm_status'] ) ? sanitize_key( $_GET['firm_status'] ) : '';
		$priv    = isset( $_GET['firm_privileged'] ) ? sanitize_key( $_GET['firm_privileged'] ) : '';
		$partner = isset( $_GET['firm_partner'] ) ? absint( $_GET['firm_partner'] ) : 0;
		// phpcs:enable
		echo '<label class="screen-reader-text" for="firm-filter-status">' . esc_html__( 'Filter by open or closed', 'firm-bridge' ) . '</label>';
		echo '<select name="firm_status" id="firm-filter-status"><option value="">' . esc_html__( 'All statuses', 'firm-bridge' ) . '</option>';
		foreach ( array( 'open' => __( 'Open', 'firm-bridge' ), 'closed' => __( 'Closed', 'firm-bridge' ) ) as $k => $label ) {
			printf( '<option value="%s"%s>%s</option>', esc_attr( $k ), selected( $status, $k, false ), esc_html( $label ) );
		}
		echo '</select><label class="screen-reader-text" for="firm-filter-privileged">' . esc_html__( 'Filter by privilege', 'firm-bridge' ) . '</label>';
		echo '<select name="firm_privileged" id="firm-filter-privileged"><option value="">' . esc_html__( 'Privileged or not', 'firm-bridge' ) . '</option>';
		foreach ( array( 'yes' => __( 'Privileged', 'firm-bridge' ), 'no' => __( 'Not privileged', 'firm-bridge' ) ) as $k => $label ) {
			printf( '<option value="%s"%s>%s</option>', esc_attr( $k ), selected( $priv, $k, false ), esc_html( $label ) );
		}
		echo '</select><label class="screen-reader-text" for="firm-filter-partner">' . esc_html__( 'Filter by responsible partner', 'firm-bridge' ) . '</label>';
		echo '<select name="firm_partner" id="firm-filter-partner"><option value="0">' . esc_html__( 'Any responsible partner', 'firm-bridge' ) . '</option>';
		foreach ( Firm_Bridge_People::people_with( array( 'partner' ) ) as $p ) {
			printf( '<option value="%s"%s>%s</option>', esc_attr( (string) $p->ID ), selected( $partner, (int) $p->ID, false ), esc_html( $p->display_name ) );
		}
		echo '</select>';
	}

	/**
	 * Applies the list filters and the number sort.
	 *
	 * @param WP_Query $query The admin list query.
	 */
	public static function apply_filters( $query ) {
		if ( ! is_admin() || ! $query->is_main_query() || self::POST_TYPE !== $query->get( 'post_type' ) ) {
			return;
		}
		// phpcs:disable WordPress.Security.NonceVerification -- read-only list filters.
		$meta = array();
		if ( isset( $_GET['firm_status'] ) && in_array( $_GET['firm_status'], array( 'open', 'closed' ), true ) ) {
			$status = sanitize_key( $_GET['firm_status'] );
			$meta[] = 'open' === $status
				? array(
					'relation' => 'OR',
					array(
						'key'   => self::META_STATUS,
						'value' => 'open',
					),
					array(
						'key'     => self::META_STATUS,
						'compare' => 'NOT EXISTS',
					),
				)
				: array(
					'key'   => self::META_STATUS,
					'value' => 'closed',
				);
		}
		if ( isset( $_GET['firm_privileged'] ) && in_array( $_GET['firm_privileged'], array( 'yes', 'no' ), true ) ) {
			$meta[] = 'yes' === $_GET['firm_privileged']
				? array(
					'key'   => self::META_PRIV,
					'value' => '1',
				)
				: array(
					'relation' => 'OR',
					array(
						'key'     => self::META_PRIV,
						'value'   => '1',
						'compare' => '!=',
					),
					array(
						'key'     => self::META_PRIV,
						'compare' => 'NOT EXISTS',
					),
				);
		}
		if ( ! empty( $_GET['firm_partner'] ) ) {
			$meta[] = array(
				'key'   => self::META_PARTNER,
				'value' => (string) absint( $_GET['firm_partner'] ),
			);
		}
		// phpcs:enable
		if ( $meta ) {
			$query->set( 'meta_query', array_merge( array( 'relation' => 'AND' ), $meta ) );
		}
		if ( 'firm_number' === $query->get( 'orderby' ) ) {
			$query->set( 'meta_key', self::META_NUMBER );
			$query->set( 'orderby', 'meta_value' );
		}
	}
}
