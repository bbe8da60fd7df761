<?php
/**
 * The portal's chat: [firm_chat] and the firm-bridge/chat block render the widget's mount point
 * with the signed-in person's matters and where to ask for a session. The widget then POSTs to
 * /wp-json/firm-bridge/v1/chat-session (the person's cookie and the REST nonce) for a single-use
 * login token that WordPress asks the bridge for, server to server. The token is never in a page
 * (a page may be cached by a theme, a proxy or a CDN whatever its headers); only that response,
 * sent with no-store, holds it, and only for the person logged in.
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
	const ROUTE     = '/chat-session';

	/**
	 * Hooks.
	 */
	public static function hooks() {
		add_action( 'init', array( __CLASS__, 'register' ) );
		add_action( 'template_redirect', array( __CLASS__, 'no_cache' ) );
		add_action( 'rest_api_init', array( __CLASS__, 'route' ) );
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
	 * POST /wp-json/firm-bridge/v1/chat-session: for the logged-in person only (cookie and REST
	 * nonce; nothing in the request names anyone).
	 */
	public static function route() {
		register_rest_route(
			Firm_Bridge_Rest::NS,
			self::ROUTE,
			array(
				'methods'             => 'POST',
				'callback'            => array( __CLASS__, 'session' ),
				'permission_callback' => static function () {
					return is_user_logged_in()
						? true
						: new WP_Error( 'firm_chat_login', __( 'Log in to the portal to use secure chat.', 'firm-bridge' ), array( 'status' => 401 ) );
				},
			)
		);
	}

	/**
	 * A single-use login token for the person logged in, or why there is none.
	 *
	 * @return WP_REST_Response|WP_Error
	 */
	public static function session() {
		$uid    = get_current_user_id();
		$mapped = Firm_Bridge_People::mapped( $uid );
		if ( null === $mapped ) {
			return self::refusal( 'firm_chat_unavailable', 403, __( 'Secure chat is not available for your account.', 'firm-bridge' ) );
		}
		if ( ! $mapped['body']['active'] ) {
			return self::refusal( 'firm_chat_ended', 403, __( 'Your access to secure chat has ended.', 'firm-bridge' ) );
		}
		// Someone is waiting: a slow bridge gets a few seconds, not the outbox's full timeout.
		$result = Firm_Bridge_Client::send( 'POST', '/_firm/v1/people/' . (int) $uid . '/login-token', '', Firm_Bridge_Client::request_id(), min( 5, Firm_Bridge_Settings::timeout() ) );
		$json   = is_array( $result['json'] ) ? $result['json'] : array();
		if ( 200 !== $result['status'] || empty( $json['login_token'] ) || empty( $json['user_id'] ) ) {
			if ( 403 === $result['status'] && 'FIRM_DEPARTED' === ( $json['errcode'] ?? '' ) ) {
				return self::refusal( 'firm_chat_ended', 403, __( 'Your access to secure chat has ended.', 'firm-bridge' ) );
			}
			if ( in_array( $result['status'], array( 404, 409 ), true ) ) {
				return self::refusal( 'firm_chat_pending', 409, __( 'Your secure chat account is being set up. Please try again in a minute.', 'firm-bridge' ) );
			}
			return self::refusal( 'firm_chat_unreachable', 503, __( 'Secure chat is unavailable right now. Please try again shortly.', 'firm-bridge' ) );
		}
		$homeserver = isset( $json['homeserver'] ) && is_string( $json['homeserver'] ) ? $json['homeserver'] : Firm_Bridge_Settings::homeserver();
		return self::private_response(
			new WP_REST_Response(
				array(
					'homeserver'    => esc_url_raw( $homeserver ),
					'user_id'       => (string) $json['user_id'],
					'login_token'   => (string) $json['login_token'],
					'expires_in_ms' => (int) ( $json['expires_in_ms'] ?? 0 ),
				)
			)
		);
	}

	/**
	 * @param string $code    Error code.
	 * @param int    $status  HTTP status.
	 * @param string $message What the person is told.
	 * @return WP_REST_Response
	 */
	private static function refusal( $code, $status, $message ) {
		return self::private_response(
			new WP_REST_Response(
				array(
					'code'    => $code,
					'message' => $message,
					'data'    => array( 'status' => $status ),
				),
				$status
			)
		);
	}

	/**
	 * @param WP_REST_Response $response Response.
	 * @return WP_REST_Response
	 */
	private static function private_response( $response ) {
		$no_store = 'no-store, no-cache, must-revalidate, max-age=0, private';
		$response->header( 'Cache-Control', $no_store );
		// The REST server sends its own no-cache headers for logged-in requests after this
		// response's; they must say no-store too.
		add_filter(
			'nocache_headers',
			static function ( $headers ) use ( $no_store ) {
				$headers['Cache-Control'] = $no_store;
				return $headers;
			}
		);
		$response->header( 'Referrer-Policy', 'no-referrer' );
		return $response;
	}

	/**
	 * A portal page is personal (the person's matters): not for shared caches.
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
		// Only the matters whose room the role table puts this person in (the bridge's answer).
		$rooms   = Firm_Bridge_Rooms::for_person( $uid );
		$matters = null === $rooms ? array() : $rooms;
		Firm_Bridge_Widget_Assets::enqueue();
		$attrs   = array(
			'data-session-url' => esc_url( rest_url( Firm_Bridge_Rest::NS . self::ROUTE ) ),
			'data-rest-nonce'  => wp_create_nonce( 'wp_rest' ),
			'data-rest-url'    => esc_url( rest_url( Firm_Bridge_Rest::NS . '/' ) ),
			'data-matters'     => (string) wp_json_encode( $matters, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE ),
		);
		$html = '<div class="firm-chat" id="' . esc_attr( wp_unique_id( 'firm-chat-' ) ) . '"';
		foreach ( $attrs as $name => $value ) {
			$html .= ' ' . $name . '="' . esc_attr( $value ) . '"';
		}
		$html .= '><noscript>' . esc_html__( 'Secure chat needs JavaScript.', 'firm-bridge' ) . '</noscript>' . self::matter_list( $matters ) . '</div>';
		// Outside the mount point, which the widget replaces with itself.
		return self::note( $rooms, $mapped['body']['role'] ) . $html;
	}

	/**
	 * What the person can do here when no matter room can be listed.
	 *
	 * @param array[]|null $rooms Firm_Bridge_Rooms::for_person(), null when the bridge did not answer.
	 * @param string       $role  Firm role.
	 * @return string HTML, or '' when there are rooms.
	 */
	private static function note( $rooms, $role ) {
		if ( null === $rooms ) {
			$text = __( 'Your matters cannot be listed right now. Please reload the page in a minute.', 'firm-bridge' );
		} elseif ( ! $rooms ) {
			$text = 'assistant' === $role
				? __( 'Legal assistants are in no matter\'s conversation: those are for the attorneys, paralegals and clients of each matter. Here you arrange appointments with clients in scheduling conversations.', 'firm-bridge' )
				: __( 'You are not in any matter\'s conversation yet. The firm adds you when you are assigned to a matter.', 'firm-bridge' );
		} else {
			return '';
		}
		return '<p class="firm-chat__note">' . esc_html( $text ) . '</p>';
	}

	/**
	 * The person's matter rooms, for a page without scripts.
	 *
	 * @param array[] $rooms Rooms.
	 * @return string HTML.
	 */
	private static function matter_list( array $rooms ) {
		if ( ! $rooms ) {
			return '';
		}
		$html = '<ul class="firm-chat__matters">';
		foreach ( $rooms as $m ) {
			$line  = $m['number'] . ' · ' . $m['title'];
			$line .= 'closed' === $m['status'] ? ' ' . __( '(closed, read-only)', 'firm-bridge' ) : '';
			$html .= '<li>' . esc_html( $line ) . '</li>';
		}
		return $html . '</ul>';
	}
}
