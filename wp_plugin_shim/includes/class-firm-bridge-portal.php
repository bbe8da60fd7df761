<?php
/**
 * The portal's chat: [firm_chat] and the firm-bridge/chat block render the widget's mount point
 * with the signed-in person's matters and a single-use login token that WordPress asks the bridge
 * for, server to server. No secret is ever put in the page; the token is only good once, for a
 * short time, for this person.
 *
 * @package Firm_Bridge
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * Shortcode and block.
 */
final class Firm_Bridge_Portal {

	const SHORTCODE = 'firm_chat';
	const BLOCK     = 'firm-bridge/chat';

	/**
	 * Hooks.
	 */
	public static function hooks() {
		add_action( 'init', array( __CLASS__, 'register' ) );
		add_action( 'template_redirect', array( __CLASS__, 'no_cache' ) );
	}

	/**
	 * Shortcode and block registration.
	 */
	public static function register() {
		add_shortcode( self::SHORTCODE, array( __CLASS__, 'render' ) );
		wp_register_script( 'firm-bridge-block', plugins_url( 'assets/block.js', FIRM_BRIDGE_FILE ), array( 'wp-blocks', 'wp-element', 'wp-i18n' ), FIRM_BRIDGE_VERSION, true );
		register_block_type(
			self::BLOCK,
			array(
				'api_version'     => 2,
				'editor_script'   => 'firm-bridge-block',
				'render_callback' => array( __CLASS__, 'render' ),
				'supports'        => array( 'html' => false ),
			)
		);
	}

	/**
	 * A page holding a login token must not be cached by the browser or a proxy.
	 */
	public static function no_cache() {
		if ( ! is_singular() ) {
			return;
		}
		$post = get_post();
		if ( $post && ( has_shortcode( $post->post_content, self::SHORTCODE ) || has_block( self::BLOCK, $post ) ) ) {
			nocache_headers();
			// WordPress 6.1's no-cache headers still allow storing; a token must not be stored.
			header( 'Cache-Control: no-store, no-cache, must-revalidate, max-age=0, private' );
			header( 'Referrer-Policy: no-referrer' );
		}
	}

	/**
	 * @param string $class   Modifier.
	 * @param string $message Text.
	 * @param string $extra   Already escaped HTML to append.
	 * @return string
	 */
	private static function box( $class, $message, $extra = '' ) {
		return '<div class="firm-chat firm-chat--' . esc_attr( $class ) . '"><p>' . esc_html( $message ) . '</p>' . $extra . '</div>';
	}

	/**
	 * The mount point, or a message saying why there is none.
	 *
	 * @return string HTML.
	 */
	public static function render() {
		if ( ! is_user_logged_in() ) {
			$here = is_singular() ? get_permalink() : home_url( '/' );
			$link = '<p><a class="firm-chat__login" href="' . esc_url( wp_login_url( $here ) ) . '">' . esc_html__( 'Log in', 'firm-bridge' ) . '</a></p>';
			return self::box( 'login', __( 'Log in to the portal to use secure chat with your attorneys.', 'firm-bridge' ), $link );
		}
		$uid    = get_current_user_id();
		$mapped = Firm_Bridge_People::mapped( $uid );
		if ( null === $mapped ) {
			return self::box( 'unavailable', __( 'Secure chat is not available for your account.', 'firm-bridge' ) );
		}
		if ( ! $mapped['body']['active'] ) {
			return self::box( 'ended', __( 'Your access to secure chat has ended.', 'firm-bridge' ) );
		}
		// A page is waiting: a slow bridge gets a few seconds, not the outbox's full timeout.
		$result = Firm_Bridge_Client::send( 'POST', '/_firm/v1/people/' . (int) $uid . '/login-token', '', Firm_Bridge_Client::request_id(), min( 5, Firm_Bridge_Settings::timeout() ) );
		$json   = is_array( $result['json'] ) ? $result['json'] : array();
		if ( 200 !== $result['status'] || empty( $json['login_token'] ) || empty( $json['user_id'] ) ) {
			if ( 403 === $result['status'] && 'FIRM_DEPARTED' === ( $json['errcode'] ?? '' ) ) {
				return self::box( 'ended', __( 'Your access to secure chat has ended.', 'firm-bridge' ) );
			}
			if ( in_array( $result['status'], array( 404, 409 ), true ) ) {
				return self::box( 'pending', __( 'Your secure chat account is being set up. Please try again in a minute.', 'firm-bridge' ) );
			}
			return self::box( 'error', __( 'Secure chat is unavailable right now. Please try again shortly.', 'firm-bridge' ) );
		}
		$homeserver = isset( $json['homeserver'] ) && is_string( $json['homeserver'] ) ? $json['homeserver'] : Firm_Bridge_Settings::homeserver();
		$matters    = Firm_Bridge_Matters::for_person( $uid );
		$attrs      = array(
			'data-homeserver'    => esc_url( $homeserver ),
			'data-user-id'       => (string) $json['user_id'],
			'data-login-token'   => (string) $json['login_token'],
			'data-expires-in-ms' => (string) (int) ( $json['expires_in_ms'] ?? 0 ),
			'data-matters'       => (string) wp_json_encode( $matters, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE ),
		);
		$html = '<div class="firm-chat" id="' . esc_attr( wp_unique_id( 'firm-chat-' ) ) . '"';
		foreach ( $attrs as $name => $value ) {
			$html .= ' ' . $name . '="' . esc_attr( $value ) . '"';
		}
		$html .= '><noscript>' . esc_html__( 'Secure chat needs JavaScript.', 'firm-bridge' ) . '</noscript><ul class="firm-chat__matters">';
		foreach ( $matters as $m ) {
			$html .= '<li>' . esc_html( $m['number'] . ' · ' . $m['title'] ) . '</li>';
		}
		return $html . '</ul></div>';
	}
}
