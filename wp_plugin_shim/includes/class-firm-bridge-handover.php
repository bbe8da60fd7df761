<?php
/**
 * A departure, mirrored in WordPress exactly as the bridge applies it (bridge/db/store.py
 * deactivate_person): the departing person's matters and the people assigned to them pass to
 * their supervising partner, if that partner is active. WordPress stays the source of truth, so a
 * later save of the matter sends the handed-over assignments instead of undoing them.
 *
 * @package Firm_Bridge
 */

if ( ! defined( 'ABSPATH' ) && ! defined( 'FIRM_BRIDGE_UNIT_TESTS' ) ) {
	exit;
}

/**
 * Pure handover rules.
 */
final class Firm_Bridge_Handover {

	/**
	 * Who takes over: the supervising partner, if active.
	 *
	 * @param int|null $supervisor Departing person's supervisor id.
	 * @param array    $directory  id => array{role:?string, active:bool}.
	 * @return int|null
	 */
	public static function successor( $supervisor, array $directory ) {
		$supervisor = (int) $supervisor;
		if ( $supervisor > 0 && isset( $directory[ $supervisor ] )
			&& 'partner' === ( $directory[ $supervisor ]['role'] ?? null )
			&& ! empty( $directory[ $supervisor ]['active'] ) ) {
			return $supervisor;
		}
		return null;
	}

	/**
	 * A matter's assignments after a departure.
	 *
	 * @param array    $matter    array{clients:int[], responsible_partner:?int, associates:int[],
	 *                            paralegals:int[]}.
	 * @param int      $departing Departing person id.
	 * @param int|null $successor Who takes over, or null.
	 * @return array|null The new assignments, or null when nothing changes in WordPress.
	 */
	public static function matter( array $matter, $departing, $successor ) {
		$departing = (int) $departing;
		$clients   = Firm_Bridge_Mapper::ids( $matter['clients'] ?? array() );
		$partner   = Firm_Bridge_Mapper::ids( $matter['responsible_partner'] ?? null );
		$partner   = $partner ? $partner[0] : null;
		$assoc     = Firm_Bridge_Mapper::ids( $matter['associates'] ?? array() );
		$paras     = Firm_Bridge_Mapper::ids( $matter['paralegals'] ?? array() );

		$capacity = null;
		if ( in_array( $departing, $clients, true ) ) {
			$capacity = 'client';
		} elseif ( $partner === $departing ) {
			$capacity = 'responsible_partner';
		} elseif ( in_array( $departing, $assoc, true ) ) {
			$capacity = 'associate';
		} elseif ( in_array( $departing, $paras, true ) ) {
			$capacity = 'paralegal';
		}
		if ( null === $capacity || 'client' === $capacity ) {
			// A departed client stays on the matter's record in WordPress; the mapper leaves them
			// out of what is sent, as the bridge leaves them out of the room. Rewriting the
			// matter would send it again, and a matter whose only client left is refused.
			return null;
		}
		if ( null !== $successor && in_array( (int) $successor, Firm_Bridge_Mapper::ids( $matter['walled_off'] ?? array() ), true ) ) {
			$successor = null; // Walled off from this matter: it passes to nobody, as at the bridge.
		}
		$without = static function ( array $ids ) use ( $departing ) {
			return array_values( array_filter( $ids, static fn( $id ) => $id !== $departing ) );
		};
		$clients = $without( $clients );
		$assoc   = $without( $assoc );
		$paras   = $without( $paras );
		if ( $partner === $departing ) {
			$partner = null;
		}
		$already = in_array( $successor, $clients, true ) || $partner === $successor
			|| in_array( $successor, $assoc, true ) || in_array( $successor, $paras, true );
		if ( null !== $successor && 'client' !== $capacity && ! $already ) {
			// The partner steps into the departing person's place; a paralegal's place is taken
			// as an associate, as the bridge does.
			if ( 'responsible_partner' === $capacity ) {
				$partner = (int) $successor;
			} else {
				$assoc[] = (int) $successor;
			}
		}
		return array(
			'clients'             => $clients,
			'responsible_partner' => $partner,
			'associates'          => $assoc,
			'paralegals'          => $paras,
		);
	}

	/**
	 * A person's assigned attorneys after an attorney departs.
	 *
	 * @param int[]    $attorneys Current list.
	 * @param int      $departing Departing attorney.
	 * @param int|null $successor Who takes over, or null.
	 * @return int[]|null New list, or null when the departing attorney is not in it.
	 */
	public static function attorneys( array $attorneys, $departing, $successor ) {
		$attorneys = Firm_Bridge_Mapper::ids( $attorneys );
		if ( ! in_array( (int) $departing, $attorneys, true ) ) {
			return null;
		}
		$out = array_values( array_filter( $attorneys, static fn( $id ) => $id !== (int) $departing ) );
		if ( null !== $successor && ! in_array( (int) $successor, $out, true ) ) {
			$out[] = (int) $successor;
		}
		return $out;
	}
}
