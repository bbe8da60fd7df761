<?php
/**
 * The portal widget's calls through WordPress, for the logged-in person only (cookie and REST
 * nonce; nothing in a request names anyone else):
 *
 * - GET  /wp-json/firm-bridge/v1/chat-contacts: whom the person may start a conversation with, as
 *   the bridge's role table answers (the homeserver refuses anyone else anyway).
 * - POST /wp-json/firm-bridge/v1/transcripts/check and /transcripts/countersign: the manifest of
 *   a transcript the person exported in their browser, sent on to the bridge signed, naming them
 *   as the exporter (their WordPress id) and where they asked from. The bridge decides whether
 *   their role may export and checks the events against the audit chain; its answer (including a
 *   403 or a 422 naming the problems) comes back as it is.
 *
 * @package Firm_Bridge
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * REST routes of the widget.
 */
final class Firm_Bridge_Widget_Rest {

	/** Largest manifest relayed (the bridge takes up to 64 MiB; a 10,000-message matter's is ~2 MB). */
	const MAX_MANIFEST = 33554432;

	/**
	 * Hooks.
	 */
	public static function hooks() {
		add_action( 'rest_api_init', array( __CLASS__, 'routes' ) );
	}

	/**
	 * Route registration.
	 */
	public static function routes() {
		register_rest_route(
			Firm_Bridge_Rest::NS,
			'/chat-contacts',
			array(
				'methods'             => 'GET',
				'callback'            => array( __CLASS__, 'contacts' ),
				'permission_callback' => array( __CLASS__, 'logged_in' ),
			)
		);
		foreach ( array( 'check', 'countersign' ) as $step ) {
			register_rest_route(
				Firm_Bridge_Rest::NS,
				'/transcripts/' . $step,
				array(
					'methods'             => 'POST',
					'callback'            => static function ( $request ) use ( $step ) {
						return self::transcript( $request, $step );
					},
					'permission_callback' => array( __CLASS__, 'logged_in' ),
					'args'                => array(
						'device_id' => array(
							'type'      => 'string',
							'maxLength' => 300,
							'pattern'   => '^[A-Za-z0-9_.=+/-]*$',
						),
					),
				)
			);
		}
	}

	/**
	 * @return true|WP_Error
	 */
	public static function logged_in() {
		return is_user_logged_in()
			? true
			: new WP_Error( 'firm_chat_login', __( 'Log in to the portal to use secure chat.', 'firm-bridge' ), array( 'status' => 401 ) );
	}

	/**
	 * The person's mapping at the bridge, or the refusal to answer with.
	 *
	 * @return WP_Error|null
	 */
	private static function refusal() {
		$mapped = Firm_Bridge_People::mapped( get_current_user_id() );
		if ( null === $mapped ) {
			return new WP_Error( 'firm_chat_unavailable', __( 'Secure chat is not available for your account.', 'firm-bridge' ), array( 'status' => 403 ) );
		}
		if ( ! $mapped['body']['active'] ) {
			return new WP_Error( 'firm_chat_ended', __( 'Your access to secure chat has ended.', 'firm-bridge' ), array( 'status' => 403 ) );
		}
		return null;
	}

	/**
	 * @param WP_REST_Response $response Response.
	 * @return WP_REST_Response
	 */
	private static function private_response( $response ) {
		$response->header( 'Cache-Control', 'no-store, private' );
		return $response;
	}

	/**
	 * GET chat-contacts.
	 *
	 * @return WP_REST_Response|WP_Error
	 */
	public static function contacts() {
		$refused = self::refusal();
		if ( null !== $refused ) {
			return $refused;
		}
		$uid    = get_current_user_id();
		$result = Firm_Bridge_Client::send( 'GET', '/_firm/v1/people/' . (int) $uid . '/contacts', '', Firm_Bridge_Client::request_id(), min( 5, Firm_Bridge_Settings::timeout() ) );
		$json   = is_array( $result['json'] ) ? $result['json'] : array();
		if ( 200 !== $result['status'] || ! isset( $json['contacts'] ) || ! is_array( $json['contacts'] ) ) {
			return new WP_Error( 'firm_chat_unreachable', __( 'The people you can write to cannot be listed right now. Please try again shortly.', 'firm-bridge' ), array( 'status' => 503 ) );
		}
		$out = array();
		foreach ( $json['contacts'] as $c ) {
			if ( ! is_array( $c ) || ! isset( $c['user_id'] ) || ! is_string( $c['user_id'] ) ) {
				continue;
			}
			$out[] = array(
				'user_id'      => $c['user_id'],
				'display_name' => (string) ( $c['display_name'] ?? $c['user_id'] ),
				'role'         => (string) ( $c['role'] ?? '' ),
				'scheduling'   => ! empty( $c['scheduling'] ),
			);
		}
		return self::private_response( new WP_REST_Response( array( 'contacts' => $out ) ) );
	}

	/**
	 * POST transcripts/check and transcripts/countersign: the body is the manifest itself.
	 *
	 * @param WP_REST_Request $request Request.
	 * @param string          $step    check or countersign.
	 * @return WP_REST_Response|WP_Error
	 */
	public static function transcript( $request, $step ) {
		$refused = self::refusal();
		if ( null !== $refused ) {
			return $refused;
		}
		$raw = (string) $request->get_body();
		if ( strlen( $raw ) > self::MAX_MANIFEST ) {
			return new WP_Error( 'firm_transcript_too_large', __( 'The transcript is too large to countersign here; export it with the command-line tool.', 'firm-bridge' ), array( 'status' => 413 ) );
		}
		// Sent on byte for byte: the countersignature covers the manifest's canonical JSON, which
		// decoding into PHP arrays and encoding again could change (an empty object becomes []).
		$decoded = json_decode( $raw );
		if ( ! is_object( $decoded ) ) {
			return new WP_Error(
				'firm_bad_manifest',
				__( 'The body must be the transcript\'s manifest, a JSON object.', 'firm-bridge' ),
				array(
					'status' => 400,
					'field'  => 'manifest',
				)
			);
		}
		$client = array(
			'ip'         => isset( $_SERVER['REMOTE_ADDR'] ) ? sanitize_text_field( wp_unslash( $_SERVER['REMOTE_ADDR'] ) ) : null,
			'user_agent' => isset( $_SERVER['HTTP_USER_AGENT'] ) ? substr( sanitize_text_field( wp_unslash( $_SERVER['HTTP_USER_AGENT'] ) ), 0, 300 ) : null,
			'device_id'  => $request->get_param( 'device_id' ) ? (string) $request->get_param( 'device_id' ) : null,
		);
		$body   = '{"actor":' . (int) get_current_user_id() . ',"client":' . wp_json_encode( $client ) . ',"manifest":' . $raw . '}';
		$result = Firm_Bridge_Client::send( 'POST', '/_firm/v1/transcripts/' . $step, $body, Firm_Bridge_Client::request_id(), max( 30, Firm_Bridge_Settings::timeout() ) );
		if ( null === $result['status'] || ! is_array( $result['json'] ) ) {
			return new WP_Error( 'firm_chat_unreachable', __( 'The firm\'s server could not be reached to countersign the transcript. Please try again shortly.', 'firm-bridge' ), array( 'status' => 503 ) );
		}
		// Objects stay objects (json_decode's default): the countersignature is signed over the
		// canonical JSON of exactly what the bridge answered.
		return self::private_response( new WP_REST_Response( json_decode( $result['body'] ), (int) $result['status'] ) );
	}
}
