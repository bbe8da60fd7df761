<?php
/**
 * Where the bridge is and how to sign for it.
 *
 * The shared secret lives in the FIRM_BRIDGE_SECRET constant (wp-config.php) when defined, else
 * in an option that is never autoloaded (so it is not in every page's option cache) and never
 * printed back into a form.
 *
 * @package Firm_Bridge
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * Option access.
 */
final class Firm_Bridge_Settings {

	const URL        = 'firm_bridge_url';
	const SECRET     = 'firm_bridge_secret';
	const HOMESERVER = 'firm_bridge_homeserver';
	const POLICY     = 'firm_bridge_policy';
	const CHAT_PAGE  = 'firm_bridge_chat_page';
	const TIMEOUT    = 'firm_bridge_timeout';
	const RETRY_BASE = 'firm_bridge_retry_base';
	const RETRY_MAX  = 'firm_bridge_retry_max';
	const MIN_SECRET = 32;
	const MAX_SKEW   = 300;

	/**
	 * Options that must not be autoloaded exist from the start with autoload off.
	 */
	public static function install() {
		foreach ( array( self::SECRET, self::POLICY ) as $name ) {
			if ( false === get_option( $name, false ) ) {
				add_option( $name, '', '', 'no' );
			}
		}
	}

	/** @return string The bridge's base URL, without a trailing slash. */
	public static function url() {
		return untrailingslashit( (string) get_option( self::URL, '' ) );
	}

	/** @return string */
	public static function homeserver() {
		return untrailingslashit( (string) get_option( self::HOMESERVER, '' ) );
	}

	/** @return int The portal's chat page (0: none chosen). */
	public static function chat_page() {
		return absint( get_option( self::CHAT_PAGE, 0 ) );
	}

	/**
	 * @param string $value Submitted URL.
	 * @return string|null Clean URL without a trailing slash, '' for empty, null when invalid.
	 */
	public static function clean_url( $value ) {
		$value = trim( sanitize_text_field( (string) $value ) );
		if ( '' === $value ) {
			return '';
		}
		$clean  = esc_url_raw( $value, array( 'http', 'https' ) );
		$scheme = wp_parse_url( $clean, PHP_URL_SCHEME );
		return ( '' !== $clean && in_array( $scheme, array( 'http', 'https' ), true ) && wp_parse_url( $clean, PHP_URL_HOST ) ) ? untrailingslashit( $clean ) : null;
	}

	/** @return bool Whether the secret comes from wp-config.php. */
	public static function secret_from_constant() {
		return defined( 'FIRM_BRIDGE_SECRET' ) && is_string( FIRM_BRIDGE_SECRET ) && '' !== FIRM_BRIDGE_SECRET;
	}

	/** @return string */
	public static function secret() {
		if ( self::secret_from_constant() ) {
			return FIRM_BRIDGE_SECRET;
		}
		return (string) get_option( self::SECRET, '' );
	}

	/**
	 * @param string $secret New secret (already validated).
	 */
	public static function set_secret( $secret ) {
		if ( false === get_option( self::SECRET, false ) ) {
			add_option( self::SECRET, $secret, '', 'no' );
		} else {
			update_option( self::SECRET, $secret, false );
		}
	}

	/** @return bool */
	public static function configured() {
		return '' !== self::url() && strlen( self::secret() ) >= self::MIN_SECRET;
	}

	/** @return int Seconds to wait for the bridge's answer. */
	public static function timeout() {
		return max( 1, (int) get_option( self::TIMEOUT, 10 ) );
	}

	/** @return int First retry delay in seconds. */
	public static function retry_base() {
		return max( 1, (int) get_option( self::RETRY_BASE, 15 ) );
	}

	/** @return int Largest retry delay in seconds. */
	public static function retry_max() {
		return max( 1, (int) get_option( self::RETRY_MAX, 3600 ) );
	}

	/**
	 * The policy document the Restrictions screen edits, or null.
	 *
	 * @return array|null
	 */
	public static function policy() {
		$text = (string) get_option( self::POLICY, '' );
		if ( '' === $text ) {
			return null;
		}
		$parsed = Firm_Bridge_Policy_Doc::parse( $text );
		return $parsed['policy'];
	}

	/**
	 * @param array $policy Parsed policy.
	 */
	public static function set_policy( array $policy ) {
		$text = Firm_Bridge_Policy_Doc::pretty( $policy );
		if ( false === get_option( self::POLICY, false ) ) {
			add_option( self::POLICY, $text, '', 'no' );
		} else {
			update_option( self::POLICY, $text, false );
		}
	}
}
