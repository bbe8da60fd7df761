<?php
/**
 * The matter rooms a person is in, as the bridge's role table decides (GET
 * /_firm/v1/people/{id}/rooms): what the portal page and the personal-data export may name. Being
 * assigned to a matter in WordPress is not enough (a paralegal on a privileged matter stays out
 * of its room, and a matter's title can itself be privileged), so WordPress does not work this
 * out itself; it asks the evaluator the homeserver enforces.
 *
 * @package Firm_Bridge
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * The bridge's answer, or null when there is none.
 */
final class Firm_Bridge_Rooms {

	/**
	 * @param int $user_id WordPress user id.
	 * @return array[]|null array{id:int, number:string, title:string, status:string, room_id:?string}
	 *                      per room, or null when the bridge could not be asked (nothing is
	 *                      listed then: a guess could name a matter the person may not see).
	 */
	public static function for_person( $user_id ) {
		// Someone is waiting for the page: a few seconds, not the outbox's full timeout.
		$result = Firm_Bridge_Client::send( 'GET', '/_firm/v1/people/' . (int) $user_id . '/rooms', '', Firm_Bridge_Client::request_id(), min( 3, Firm_Bridge_Settings::timeout() ) );
		if ( 404 === $result['status'] ) {
			// Not known to the bridge yet: in no room.
			return array();
		}
		$json = is_array( $result['json'] ) ? $result['json'] : array();
		if ( 200 !== $result['status'] || ! isset( $json['matters'] ) || ! is_array( $json['matters'] ) ) {
			return null;
		}
		$out = array();
		foreach ( $json['matters'] as $m ) {
			if ( ! is_array( $m ) || ! isset( $m['wp_id'] ) ) {
				continue;
			}
			$out[] = array(
				'id'      => (int) $m['wp_id'],
				'number'  => (string) ( $m['number'] ?? '' ),
				'title'   => (string) ( $m['title'] ?? '' ),
				'status'  => 'closed' === ( $m['status'] ?? '' ) ? 'closed' : 'open',
				'room_id' => isset( $m['room_id'] ) && is_string( $m['room_id'] ) ? $m['room_id'] : null,
				// Whether the role table lets the person export this matter's transcript.
				'export'  => ! empty( $m['export'] ),
			);
		}
		return $out;
	}
}
