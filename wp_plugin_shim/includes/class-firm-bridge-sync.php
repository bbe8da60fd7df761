<?php
/**
 * Change tracking. Hooks only mark people and matters as changed; at the end of the PHP request
 * each changed object's final state becomes one outbox row (WordPress fires several hooks per
 * save, some before the profile fields or meta are stored, so snapshotting at the first hook
 * would send a half-saved object). Then delivery is attempted at once; whatever does not go now
 * goes through WP-Cron.
 *
 * @package Firm_Bridge
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * Dirty sets and flushing.
 */
final class Firm_Bridge_Sync {

	/** Seconds a page request may spend delivering before it answers. */
	const INLINE_BUDGET = 5;

	/** @var array<int,bool> */
	private static $people = array();
	/** @var array<int,bool> */
	private static $matters = array();
	/** @var int Rows written by this request. */
	private static $written = 0;

	/**
	 * Hooks.
	 */
	public static function hooks() {
		add_action( 'shutdown', array( __CLASS__, 'shutdown' ), 0 );
	}

	/**
	 * @param int $id User id.
	 */
	public static function person( $id ) {
		if ( $id > 0 ) {
			self::$people[ (int) $id ] = true;
		}
	}

	/**
	 * @param int $id Matter id.
	 */
	public static function matter( $id ) {
		if ( $id > 0 ) {
			self::$matters[ (int) $id ] = true;
		}
	}

	/**
	 * Writes rows for everything changed so far: people first (a matter names people), then
	 * matters. A departure's handover changes more objects; those are written in the next round.
	 *
	 * @return int Rows written.
	 */
	public static function flush() {
		global $wpdb;
		if ( ! self::$people && ! self::$matters ) {
			return 0;
		}
		// Snapshot and insert under one lock, so that of two saves of the same object the one
		// that reads later also gets the later row (and the bridge ends with the later state).
		$lock   = $wpdb->prefix . 'firm_bridge_flush';
		$locked = '1' === (string) $wpdb->get_var( $wpdb->prepare( 'SELECT GET_LOCK(%s, %d)', $lock, 10 ) );
		try {
			$written = self::flush_rounds();
		} finally {
			if ( $locked ) {
				$wpdb->query( $wpdb->prepare( 'SELECT RELEASE_LOCK(%s)', $lock ) );
			}
		}
		self::$written += $written;
		if ( $written > 0 ) {
			// Scheduled before any delivery attempt: if this PHP process dies while sending, the
			// rows are picked up by the next WP-Cron run, not only by the five-minute pass.
			Firm_Bridge_Outbox::schedule_next();
		}
		return $written;
	}

	/**
	 * @return int Rows written.
	 */
	private static function flush_rounds() {
		$written = 0;
		for ( $round = 0; $round < 5 && ( self::$people || self::$matters ); $round++ ) {
			$people        = array_keys( self::$people );
			self::$people  = array();
			sort( $people );
			foreach ( $people as $id ) {
				$written += null === Firm_Bridge_People::enqueue( $id ) ? 0 : 1;
			}
			if ( self::$people ) {
				continue;
			}
			$matters       = array_keys( self::$matters );
			self::$matters = array();
			sort( $matters );
			foreach ( $matters as $id ) {
				$written += null === Firm_Bridge_Matters::enqueue( $id ) ? 0 : 1;
			}
		}
		return $written;
	}

	/**
	 * End of the request: write the rows, then try to deliver them.
	 */
	public static function shutdown() {
		self::flush();
		if ( self::$written > 0 && ! wp_doing_cron() ) {
			Firm_Bridge_Outbox::deliver( self::INLINE_BUDGET );
		}
		self::$written = 0;
	}

	/**
	 * A fresh row for one object's current state.
	 *
	 * @param string $type  person, matter or policy.
	 * @param int    $id    Object id.
	 * @param bool   $force Write even if unchanged.
	 * @return int|null Row id.
	 */
	public static function enqueue_object( $type, $id, $force ) {
		switch ( $type ) {
			case 'person':
				return Firm_Bridge_People::enqueue( $id, $force );
			case 'matter':
				return Firm_Bridge_Matters::enqueue( $id, $force );
			case 'policy':
				return self::enqueue_policy();
			case Firm_Bridge_Notices::OBJECT_TYPE:
				return Firm_Bridge_Notices::enqueue( $id );
		}
		return null;
	}

	/**
	 * The Restrictions screen's role table, to PUT /_firm/v1/policy.
	 *
	 * @param array|null $policy A table to send, or null for the firm's current one.
	 * @return int|null Row id, or null when no policy is set.
	 */
	public static function enqueue_policy( $policy = null ) {
		$policy = null === $policy ? Firm_Bridge_Settings::policy() : $policy;
		if ( null === $policy ) {
			return null;
		}
		return Firm_Bridge_Outbox::enqueue( 'policy', 0, 'PUT', '/_firm/v1/policy', null, array(), 'Role table (Restrictions)', Firm_Bridge_Policy_Doc::body( $policy ) );
	}

	/**
	 * People a resync sends: everyone with a firm role or known to the bridge, supervisors and
	 * attorneys before the people who name them.
	 *
	 * @return int[] User ids in sending order.
	 */
	public static function resync_people() {
		$rank = array_flip( array( 'administrator', 'partner', 'associate', 'paralegal', 'assistant', 'client' ) );
		$all  = array();
		foreach ( get_users( array( 'fields' => 'all' ) ) as $user ) {
			$role  = Firm_Bridge_Mapper::firm_role( (array) $user->roles );
			$known = '1' === (string) get_user_meta( $user->ID, Firm_Bridge_People::META_KNOWN, true );
			if ( null !== $role || $known ) {
				$all[] = array( null === $role ? 99 : $rank[ $role ], (int) $user->ID );
			}
		}
		sort( $all );
		return array_map( static fn( $entry ) => $entry[1], $all );
	}

	/**
	 * Matters a resync considers (in every status: drafts are skipped when sending, a trashed
	 * matter the bridge knows is sent closed).
	 *
	 * @return int[] Post ids.
	 */
	public static function resync_matters() {
		return array_map(
			'intval',
			get_posts(
				array(
					'post_type'      => Firm_Bridge_Matters::POST_TYPE,
					'post_status'    => array( 'publish', 'private', 'draft', 'pending', 'future', 'trash' ),
					'fields'         => 'ids',
					'posts_per_page' => -1,
					'orderby'        => 'ID',
					'order'          => 'ASC',
				)
			)
		);
	}

	/**
	 * "Resync everything": the policy, every person (supervisors and attorneys before the people
	 * who name them), every matter the bridge should know. The bridge converges; unchanged
	 * objects change nothing there.
	 *
	 * @return int Rows written.
	 */
	public static function resync() {
		self::flush();
		$rows = null === self::enqueue_policy() ? 0 : 1;
		foreach ( self::resync_people() as $id ) {
			$rows += null === Firm_Bridge_People::enqueue( $id, true ) ? 0 : 1;
		}
		foreach ( self::resync_matters() as $id ) {
			$rows += null === Firm_Bridge_Matters::enqueue( $id, true ) ? 0 : 1;
		}
		$rows += Firm_Bridge_Notices::resync();
		// Objects touched by the pass itself (a handover) go out after it.
		$rows         += self::flush();
		self::$written += $rows;
		Firm_Bridge_Outbox::schedule_next();
		return $rows;
	}
}
