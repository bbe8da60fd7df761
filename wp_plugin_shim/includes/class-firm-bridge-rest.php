<?php
/**
 * Admin REST routes (application passwords or cookie + nonce): the outbox and "resync
 * everything", for tooling that manages the site remotely. All need firm_bridge_manage.
 *
 * @package Firm_Bridge
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * Admin REST routes.
 */
final class Firm_Bridge_Rest {

	const NS = 'firm-bridge/v1';

	/**
	 * Hooks.
	 */
	public static function hooks() {
		add_action( 'rest_api_init', array( __CLASS__, 'routes' ) );
	}

	/**
	 * @return bool
	 */
	public static function can_manage() {
		return current_user_can( Firm_Bridge_Roles::MANAGE );
	}

	/**
	 * Route registration.
	 */
	public static function routes() {
		register_rest_route(
			self::NS,
			'/outbox',
			array(
				'methods'             => 'GET',
				'callback'            => array( __CLASS__, 'outbox' ),
				'permission_callback' => array( __CLASS__, 'can_manage' ),
				'args'                => array(
					'status' => array(
						'type' => 'string',
						'enum' => array( 'pending', 'delivered', 'failed', 'superseded' ),
					),
					'after'  => array(
						'type'    => 'integer',
						'minimum' => 0,
						'default' => 0,
					),
				),
			)
		);
		register_rest_route(
			self::NS,
			'/resync',
			array(
				'methods'             => 'POST',
				'callback'            => array( __CLASS__, 'resync' ),
				'permission_callback' => array( __CLASS__, 'can_manage' ),
			)
		);
	}

	/**
	 * @param WP_REST_Request $request Request.
	 * @return WP_REST_Response
	 */
	public static function outbox( $request ) {
		$rows = Firm_Bridge_Outbox::rows( $request['status'] ? $request['status'] : null, 1000, (int) $request['after'] );
		$out  = array();
		foreach ( array_reverse( $rows ) as $row ) {
			$out[] = array(
				'id'          => (int) $row['id'],
				'object_type' => $row['object_type'],
				'object_id'   => (int) $row['object_id'],
				'method'      => $row['method'],
				'path'        => $row['path'],
				'body'        => '' === $row['body'] ? null : json_decode( $row['body'], true ),
				'request_id'  => $row['request_id'],
				'status'      => $row['status'],
				'attempts'    => (int) $row['attempts'],
				'last_status' => null === $row['last_status'] ? null : (int) $row['last_status'],
				'last_error'  => $row['last_error'],
				'summary'     => $row['summary'],
			);
		}
		return rest_ensure_response(
			array(
				'rows'    => $out,
				'pending' => Firm_Bridge_Outbox::count( 'pending' ),
				'failed'  => Firm_Bridge_Outbox::count( 'failed' ),
			)
		);
	}

	/**
	 * @return WP_REST_Response
	 */
	public static function resync() {
		return rest_ensure_response( array( 'queued' => Firm_Bridge_Sync::resync() ) );
	}
}
