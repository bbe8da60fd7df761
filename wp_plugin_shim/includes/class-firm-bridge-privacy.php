<?php
/**
 * WordPress's personal-data tools: the exporter lists the person's chat account, the eraser
 * deactivates it through the bridge and replaces the name and e-mail the bridge holds.
 *
 * Messages are end-to-end encrypted between people's devices: neither WordPress nor the bridge
 * can export or erase their content, and the export says so.
 *
 * @package Firm_Bridge
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * Exporter and eraser.
 */
final class Firm_Bridge_Privacy {

	/**
	 * Hooks.
	 */
	public static function hooks() {
		add_filter( 'wp_privacy_personal_data_exporters', array( __CLASS__, 'exporters' ) );
		add_filter( 'wp_privacy_personal_data_erasers', array( __CLASS__, 'erasers' ) );
	}

	/**
	 * @param array $exporters Registered exporters.
	 * @return array
	 */
	public static function exporters( $exporters ) {
		$exporters['firm-bridge'] = array(
			'exporter_friendly_name' => __( 'Secure chat account', 'firm-bridge' ),
			'callback'               => array( __CLASS__, 'export' ),
		);
		return $exporters;
	}

	/**
	 * @param array $erasers Registered erasers.
	 * @return array
	 */
	public static function erasers( $erasers ) {
		$erasers['firm-bridge'] = array(
			'eraser_friendly_name' => __( 'Secure chat account', 'firm-bridge' ),
			'callback'             => array( __CLASS__, 'erase' ),
		);
		return $erasers;
	}

	/**
	 * @param string $email E-mail address.
	 * @param int    $page  Page (one is enough).
	 * @return array
	 */
	public static function export( $email, $page = 1 ) {
		$user = get_user_by( 'email', $email );
		$done = array(
			'data' => array(),
			'done' => true,
		);
		if ( ! $user || '1' !== (string) get_user_meta( $user->ID, Firm_Bridge_People::META_KNOWN, true ) ) {
			return $done;
		}
		$mapped  = Firm_Bridge_People::mapped( $user->ID );
		$mxid    = (string) get_user_meta( $user->ID, Firm_Bridge_People::META_MXID, true );
		// The rooms the role table puts them in (the bridge's answer), as the portal lists them:
		// a matter they are assigned to but kept out of is not theirs to read about.
		$rooms   = Firm_Bridge_Rooms::for_person( $user->ID );
		$matters = array();
		foreach ( null === $rooms ? array() : $rooms as $m ) {
			$matters[] = $m['number'] . ' · ' . $m['title'] . ' (' . $m['status'] . ')';
		}
		$data = array(
			array(
				'name'  => __( 'Chat account', 'firm-bridge' ),
				'value' => '' !== $mxid ? $mxid : __( '(not created yet)', 'firm-bridge' ),
			),
			array(
				'name'  => __( 'Firm role', 'firm-bridge' ),
				'value' => $mapped ? $mapped['body']['role'] : __( 'none', 'firm-bridge' ),
			),
			array(
				'name'  => __( 'Chat access', 'firm-bridge' ),
				'value' => ( $mapped && $mapped['body']['active'] ) ? __( 'active', 'firm-bridge' ) : __( 'ended', 'firm-bridge' ),
			),
			array(
				'name'  => __( 'Matter rooms', 'firm-bridge' ),
				'value' => null === $rooms ? __( '(the chat bridge did not answer; export again later)', 'firm-bridge' ) : ( $matters ? implode( '; ', $matters ) : __( 'none', 'firm-bridge' ) ),
			),
			array(
				'name'  => __( 'Messages', 'firm-bridge' ),
				'value' => __( 'End-to-end encrypted: only the devices of the people in each conversation can read them; export them from your chat app.', 'firm-bridge' ),
			),
		);
		return array(
			'data' => array(
				array(
					'group_id'    => 'firm-bridge',
					'group_label' => __( 'Secure chat', 'firm-bridge' ),
					'item_id'     => 'firm-chat-' . $user->ID,
					'data'        => $data,
				),
			),
			'done' => true,
		);
	}

	/**
	 * @param string $email E-mail address.
	 * @param int    $page  Page.
	 * @return array
	 */
	public static function erase( $email, $page = 1 ) {
		$user   = get_user_by( 'email', $email );
		$result = array(
			'items_removed'  => false,
			'items_retained' => false,
			'messages'       => array(),
			'done'           => true,
		);
		if ( ! $user || '1' !== (string) get_user_meta( $user->ID, Firm_Bridge_People::META_KNOWN, true ) ) {
			return $result;
		}
		// Erased people leave like a departure; the bridge keeps only their fixed login.
		update_user_meta( $user->ID, Firm_Bridge_People::META_ERASED, '1' );
		update_user_meta( $user->ID, Firm_Bridge_People::META_SUSPENDED, '1' );
		delete_user_meta( $user->ID, Firm_Bridge_Login_Check::KNOWN_META ); // Where they signed in from.
		Firm_Bridge_Sync::person( $user->ID );
		Firm_Bridge_Sync::flush();
		Firm_Bridge_Outbox::enqueue( 'person', $user->ID, 'POST', '/_firm/v1/people/' . (int) $user->ID . '/deactivate', null, array(), sprintf( 'Erasure of %s', $user->user_login ) );
		$stats = Firm_Bridge_Outbox::deliver( 10 );
		$mxid  = (string) get_user_meta( $user->ID, Firm_Bridge_People::META_MXID, true );
		$result['items_removed']  = true;
		$result['items_retained'] = true;
		$result['messages'][]     = sprintf(
			/* translators: %s: Matrix user id */
			__( 'Secure chat account %s deactivated: its sessions end and it leaves every room. Its name and e-mail address were replaced at the bridge. Messages already sent stay end-to-end encrypted on the devices of the other people in those conversations.', 'firm-bridge' ),
			'' !== $mxid ? $mxid : $user->user_login
		);
		if ( $stats['pending'] > 0 ) {
			$result['messages'][] = __( 'The bridge has not confirmed yet; the plugin keeps retrying (see Firm Bridge → Outbox).', 'firm-bridge' );
		}
		return $result;
	}
}
