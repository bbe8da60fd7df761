<?php
/**
 * Where people land after logging in: the portal's chat page (Settings → Chat page) for those
 * whose work is chat, instead of their wp-admin profile, WordPress's default for anyone who
 * cannot edit posts. Partners and administrators, who manage matters, keep the dashboard.
 *
 * @package Firm_Bridge
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * The login_redirect filter.
 */
final class Firm_Bridge_Landing {

	/** Firm roles that land on the chat page. */
	const ROLES = array( 'client', 'paralegal', 'associate', 'assistant' );

	/**
	 * Hooks.
	 */
	public static function hooks() {
		add_filter( 'login_redirect', array( __CLASS__, 'login_redirect' ), 10, 3 );
	}

	/**
	 * @param string           $redirect_to Where WordPress sends the person.
	 * @param string           $requested   What the login link asked for ('' for nothing).
	 * @param WP_User|WP_Error $user        The person, or the login's error.
	 * @return string
	 */
	public static function login_redirect( $redirect_to, $requested, $user ) {
		if ( ! $user instanceof WP_User ) {
			return $redirect_to;
		}
		$page = Firm_Bridge_Settings::chat_page();
		if ( ! $page || 'publish' !== get_post_status( $page ) ) {
			return $redirect_to;
		}
		if ( ! in_array( Firm_Bridge_Mapper::firm_role( (array) $user->roles ), self::ROLES, true ) ) {
			return $redirect_to;
		}
		// A link the person followed to a page of the portal is kept; only WordPress's own
		// destinations (nothing asked, the dashboard, the profile) become the chat page.
		$defaults = array( '', untrailingslashit( admin_url() ), admin_url( 'profile.php' ) );
		if ( ! in_array( untrailingslashit( (string) $requested ), $defaults, true ) ) {
			return $redirect_to;
		}
		return (string) get_permalink( $page );
	}
}
