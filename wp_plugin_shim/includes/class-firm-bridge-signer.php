<?php
/**
 * Request signatures shared with the bridge (bridge/web/signing.py): lowercase hex
 * HMAC-SHA256, keyed with the shared secret, of METHOD "\n" PATH_AND_QUERY "\n" TIMESTAMP "\n"
 * REQUEST_ID "\n" BODY. Pure PHP, no WordPress: the PHPUnit tests load it on its own.
 *
 * @package Firm_Bridge
 */

if ( ! defined( 'ABSPATH' ) && ! defined( 'FIRM_BRIDGE_UNIT_TESTS' ) ) {
	exit;
}

/**
 * A request that is not signed as it must be; `field` names the header at fault.
 */
class Firm_Bridge_Signature_Error extends Exception {

	/**
	 * The header at fault.
	 *
	 * @var string
	 */
	public $field;

	/**
	 * @param string $field   Header name.
	 * @param string $message What is wrong with it.
	 */
	public function __construct( $field, $message ) {
		parent::__construct( $message );
		$this->field = $field;
	}
}

/**
 * Signs requests to the bridge and verifies requests from it.
 */
final class Firm_Bridge_Signer {

	const TIMESTAMP_HEADER  = 'X-Firm-Timestamp';
	const REQUEST_ID_HEADER = 'X-Firm-Request-Id';
	const SIGNATURE_HEADER  = 'X-Firm-Signature';
	const REQUEST_ID_RE     = '/\A[A-Za-z0-9._:\-]{8,128}\z/';

	/**
	 * The bytes that are signed.
	 *
	 * @param string $method     HTTP method (upper-cased here, as the bridge does).
	 * @param string $path       Path and query exactly as sent on the wire.
	 * @param string $timestamp  Unix seconds, as a decimal string.
	 * @param string $request_id The request id.
	 * @param string $body       The raw body bytes.
	 * @return string
	 */
	public static function canonical( $method, $path, $timestamp, $request_id, $body ) {
		return strtoupper( $method ) . "\n" . $path . "\n" . $timestamp . "\n" . $request_id . "\n" . $body;
	}

	/**
	 * @param string $secret     Shared secret.
	 * @param string $method     HTTP method.
	 * @param string $path       Path and query.
	 * @param string $timestamp  Unix seconds.
	 * @param string $request_id Request id.
	 * @param string $body       Raw body.
	 * @return string Lowercase hex HMAC-SHA256.
	 */
	public static function sign( $secret, $method, $path, $timestamp, $request_id, $body ) {
		return hash_hmac( 'sha256', self::canonical( $method, $path, (string) $timestamp, $request_id, $body ), $secret );
	}

	/**
	 * Headers for a signed request.
	 *
	 * @param string $secret     Shared secret.
	 * @param string $method     HTTP method.
	 * @param string $path       Path and query as sent.
	 * @param string $body       Raw body.
	 * @param string $request_id Request id (kept across retries of one logical request).
	 * @param int    $timestamp  Unix seconds, fresh for each attempt.
	 * @return array<string,string>
	 */
	public static function headers( $secret, $method, $path, $body, $request_id, $timestamp ) {
		$ts = (string) (int) $timestamp;
		return array(
			self::TIMESTAMP_HEADER  => $ts,
			self::REQUEST_ID_HEADER => $request_id,
			self::SIGNATURE_HEADER  => self::sign( $secret, $method, $path, $ts, $request_id, $body ),
		);
	}

	/**
	 * Whether a request id has the shape the bridge accepts.
	 *
	 * @param string $request_id Candidate id.
	 * @return bool
	 */
	public static function valid_request_id( $request_id ) {
		return is_string( $request_id ) && 1 === preg_match( self::REQUEST_ID_RE, $request_id );
	}

	/**
	 * Check a request's signature and freshness, as the bridge does.
	 *
	 * @param string   $secret   Shared secret.
	 * @param string   $method   HTTP method.
	 * @param string   $path     Path and query as received.
	 * @param callable $header   fn(string $name): ?string, reading a request header.
	 * @param string   $body     Raw body.
	 * @param int      $now      Current Unix time.
	 * @param int      $max_skew Largest accepted clock difference in seconds.
	 * @return string The request id.
	 * @throws Firm_Bridge_Signature_Error When the request is not signed as it must be.
	 */
	public static function verify( $secret, $method, $path, $header, $body, $now, $max_skew ) {
		$get = static function ( $name ) use ( $header ) {
			$value = call_user_func( $header, $name );
			if ( ! is_string( $value ) || '' === $value ) {
				throw new Firm_Bridge_Signature_Error( $name, 'header is missing' );
			}
			return $value;
		};
		$signature  = $get( self::SIGNATURE_HEADER );
		$timestamp  = $get( self::TIMESTAMP_HEADER );
		$request_id = $get( self::REQUEST_ID_HEADER );
		if ( 1 !== preg_match( '/\A[0-9]{1,12}\z/', $timestamp ) ) {
			throw new Firm_Bridge_Signature_Error( self::TIMESTAMP_HEADER, 'must be a Unix time in seconds' );
		}
		if ( ! self::valid_request_id( $request_id ) ) {
			throw new Firm_Bridge_Signature_Error( self::REQUEST_ID_HEADER, 'must be 8 to 128 characters of [A-Za-z0-9._:-]' );
		}
		if ( '' === (string) $secret ) {
			// An unconfigured plugin must refuse everything rather than accept an empty-key MAC.
			throw new Firm_Bridge_Signature_Error( self::SIGNATURE_HEADER, 'no shared secret is configured' );
		}
		$expected = self::sign( $secret, $method, $path, $timestamp, $request_id, $body );
		if ( ! hash_equals( $expected, strtolower( trim( $signature ) ) ) ) {
			throw new Firm_Bridge_Signature_Error( self::SIGNATURE_HEADER, 'does not match the request' );
		}
		// Freshness after the MAC, so an unauthenticated caller learns nothing about clocks.
		if ( abs( (int) $now - (int) $timestamp ) > (int) $max_skew ) {
			throw new Firm_Bridge_Signature_Error( self::TIMESTAMP_HEADER, 'is more than ' . (int) $max_skew . ' seconds from now' );
		}
		return $request_id;
	}
}
