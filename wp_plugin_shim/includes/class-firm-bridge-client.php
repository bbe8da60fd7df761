<?php
/**
 * Signed HTTP calls to the bridge's provisioning API.
 *
 * @package Firm_Bridge
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * Sends one signed request and reports what came back. Never logs bodies, tokens or the secret.
 */
final class Firm_Bridge_Client {

	/**
	 * @param string   $method     HTTP method.
	 * @param string   $path       API path with query, e.g. /_firm/v1/people/12.
	 * @param string   $body       Raw body ('' for none).
	 * @param string   $request_id Request id (the outbox keeps it across retries).
	 * @param int|null $timeout    Seconds, or null for the configured timeout.
	 * @return array array{status:?int, body:string, json:mixed, error:?string}
	 */
	public static function send( $method, $path, $body, $request_id, $timeout = null ) {
		if ( ! Firm_Bridge_Settings::configured() ) {
			return array(
				'status' => null,
				'body'   => '',
				'json'   => null,
				'error'  => 'the bridge URL or shared secret is not set',
			);
		}
		$base = Firm_Bridge_Settings::url();
		// The bridge verifies the path it receives; a URL with a path prefix sends that prefix too.
		$prefix  = (string) wp_parse_url( $base, PHP_URL_PATH );
		$signed  = untrailingslashit( $prefix ) . $path;
		$headers = Firm_Bridge_Signer::headers( Firm_Bridge_Settings::secret(), $method, $signed, $body, $request_id, time() );
		$headers['Content-Type'] = 'application/json';
		$headers['Accept']       = 'application/json';
		$args = array(
			'method'      => $method,
			'timeout'     => null === $timeout ? Firm_Bridge_Settings::timeout() : $timeout,
			'redirection' => 0,
			'headers'     => $headers,
			'user-agent'  => 'firm-bridge-wordpress/' . FIRM_BRIDGE_VERSION,
		);
		if ( 'GET' !== $method ) {
			$args['body'] = $body;
		}
		$response = wp_remote_request( $base . $path, $args );
		if ( is_wp_error( $response ) ) {
			return array(
				'status' => null,
				'body'   => '',
				'json'   => null,
				'error'  => 'no answer: ' . $response->get_error_message(),
			);
		}
		$status = (int) wp_remote_retrieve_response_code( $response );
		$text   = (string) wp_remote_retrieve_body( $response );
		$json   = json_decode( $text, true );
		$error  = null;
		if ( $status < 200 || $status >= 300 ) {
			$error = 'HTTP ' . $status;
			if ( is_array( $json ) && isset( $json['errcode'] ) ) {
				$error .= ' ' . $json['errcode'];
				if ( isset( $json['field'] ) ) {
					$error .= ' (' . $json['field'] . ')';
				}
				if ( isset( $json['error'] ) ) {
					$error .= ': ' . $json['error'];
				}
			}
		}
		return array(
			'status' => $status,
			'body'   => $text,
			'json'   => $json,
			'error'  => null === $error ? null : substr( $error, 0, 1000 ),
		);
	}

	/**
	 * A fresh request id for a call made outside the outbox.
	 *
	 * @return string
	 */
	public static function request_id() {
		return 'wp-' . str_replace( '-', '', wp_generate_uuid4() );
	}
}
