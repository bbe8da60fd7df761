<?php
/**
 * Loads the portal widget (widget/dist/, built from widget/src/) on pages that render the chat
 * mount point, and nowhere else: an ES module (WordPress 6.1 has no script modules, so the
 * script_loader_tag filter marks it type="module") with content-hashed file names, so that the
 * web server may let browsers keep them for a year. The module loads the crypto wasm from the
 * same folder. Translations come through wp_set_script_translations.
 *
 * @package Firm_Bridge
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * Script loading for the widget.
 */
final class Firm_Bridge_Widget_Assets {

	const HANDLE        = 'firm-bridge-widget';
	const LOGOUT_HANDLE = 'firm-bridge-widget-logout';
	const DIST          = 'widget/dist/';

	/**
	 * Hooks.
	 */
	public static function hooks() {
		add_filter( 'script_loader_tag', array( __CLASS__, 'module_tag' ), 10, 2 );
		add_filter( 'load_script_translation_file', array( __CLASS__, 'translation_file' ), 10, 3 );
		add_action( 'login_enqueue_scripts', array( __CLASS__, 'logout_screen' ) );
		add_action( 'wp_logout', array( __CLASS__, 'clear_shared_computer' ) );
	}

	/**
	 * The build's manifest (file names with their hashes), or null when the build is missing.
	 *
	 * @return array|null
	 */
	public static function manifest() {
		static $manifest = false;
		if ( false === $manifest ) {
			$file     = FIRM_BRIDGE_DIR . '/' . self::DIST . 'manifest.json';
			$data     = is_readable( $file ) ? json_decode( (string) file_get_contents( $file ), true ) : null; // phpcs:ignore WordPress.WP.AlternativeFunctions
			$manifest = is_array( $data ) && isset( $data['chat']['js'] ) ? $data : null;
		}
		return $manifest;
	}

	/**
	 * @param string $file File name from the manifest.
	 * @return string URL.
	 */
	private static function url( $file ) {
		return plugins_url( self::DIST . $file, FIRM_BRIDGE_FILE );
	}

	/**
	 * Enqueues the widget (called by the portal when it renders a mount point).
	 *
	 * @return bool Whether the widget is available.
	 */
	public static function enqueue() {
		$m = self::manifest();
		if ( null === $m ) {
			return false;
		}
		// No version query: the names carry the content hash.
		wp_enqueue_script( self::HANDLE, self::url( $m['chat']['js'] ), array( 'wp-i18n' ), null, true ); // phpcs:ignore WordPress.WP.EnqueuedResourceParameters.MissingVersion
		if ( ! empty( $m['chat']['css'] ) ) {
			wp_enqueue_style( self::HANDLE, self::url( $m['chat']['css'] ), array(), null ); // phpcs:ignore WordPress.WP.EnqueuedResourceParameters.MissingVersion
		}
		wp_set_script_translations( self::HANDLE, 'firm-bridge', FIRM_BRIDGE_DIR . '/languages' );
		return true;
	}

	/**
	 * The widget's scripts are ES modules.
	 *
	 * @param string $tag    The script tags WordPress prints for the handle (translations first).
	 * @param string $handle Handle.
	 * @return string
	 */
	public static function module_tag( $tag, $handle ) {
		if ( self::HANDLE !== $handle && self::LOGOUT_HANDLE !== $handle ) {
			return $tag;
		}
		// Only the tag with the src: the inline translations before it stay classic scripts.
		return (string) preg_replace_callback(
			'#<script\b([^>]*\bid=(["\'])' . preg_quote( $handle, '#' ) . '-js\2[^>]*)>#',
			static function ( $m ) {
				$attrs = preg_replace( '#\stype=(["\'])[^"\']*\1#', '', $m[1] );
				return '<script type="module"' . $attrs . '>';
			},
			$tag
		);
	}

	/**
	 * The widget's translation, under one fixed name per locale: the hashed file name changes with
	 * every build, so WordPress's own name for it (the md5 of the script's path) would too.
	 * A firm's file in wp-content/languages/plugins/ (kept across plugin updates) comes first,
	 * then the plugin's languages/. The language is the person's own (their profile's, which is
	 * the site's unless they chose one): WordPress would use the site's on the front end.
	 *
	 * @param string|false $file   File WordPress would read.
	 * @param string       $handle Handle.
	 * @param string       $domain Text domain.
	 * @return string|false
	 */
	public static function translation_file( $file, $handle, $domain ) {
		if ( self::HANDLE !== $handle || 'firm-bridge' !== $domain ) {
			return $file;
		}
		$locale = self::locale();
		if ( ! preg_match( '/^[A-Za-z0-9_@-]+$/', $locale ) ) {
			return false; // Not a locale: never part of a path.
		}
		$name = 'firm-bridge-' . $locale . '-widget.json';
		foreach ( array( WP_LANG_DIR . '/plugins/', FIRM_BRIDGE_DIR . '/languages/' ) as $dir ) {
			if ( is_readable( $dir . $name ) ) {
				return $dir . $name;
			}
		}
		return false;
	}

	/**
	 * The widget's language: the logged-in person's, else the site's.
	 *
	 * @return string Locale such as de_DE.
	 */
	public static function locale() {
		return is_user_logged_in() ? get_user_locale() : determine_locale();
	}

	/**
	 * WordPress's "You are now logged out" screen tells an open chat tab (a storage event), which
	 * stops at once, and on a shared computer signs its device out and wipes the browser's store.
	 */
	public static function logout_screen() {
		// phpcs:ignore WordPress.Security.NonceVerification.Recommended -- read-only flag WordPress sets.
		if ( empty( $_GET['loggedout'] ) ) {
			return;
		}
		$m = self::manifest();
		if ( null !== $m && ! empty( $m['logout']['js'] ) ) {
			wp_enqueue_script( self::LOGOUT_HANDLE, self::url( $m['logout']['js'] ), array(), null, true ); // phpcs:ignore WordPress.WP.EnqueuedResourceParameters.MissingVersion
		}
	}

	/**
	 * A person who said "this is a shared computer" leaves no chat store behind when logging out
	 * of WordPress, even with no chat tab open: the browser deletes this site's storage.
	 */
	public static function clear_shared_computer() {
		if ( isset( $_COOKIE['firm_chat_shared'] ) && '1' === $_COOKIE['firm_chat_shared'] && ! headers_sent() ) {
			header( 'Clear-Site-Data: "storage"' );
		}
	}
}
