<?php
/**
 * The accounts of this site get a picture from the plugin's own folder instead of Gravatar.
 *
 * WordPress asks secure.gravatar.com for every avatar it shows, the toolbar's own included, with
 * the md5 of the person's e-mail address: each page a logged-in client or attorney opens would
 * tell an outside service that this address has an account at the firm, and the portal page would
 * load from another origin. So every avatar that belongs to an account of this site (the
 * toolbar's, an author's, a logged-in commenter's) is the plugin's plain picture, site-wide.
 * Visitors who comment without an account keep WordPress's setting. A firm that wants Gravatar
 * back for its accounts returns false from the firm_bridge_local_avatar filter.
 *
 * @package Firm_Bridge
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * Local avatars for the site's accounts.
 */
final class Firm_Bridge_Avatars {

	/**
	 * Hooks.
	 */
	public static function hooks() {
		add_filter( 'pre_get_avatar_data', array( __CLASS__, 'avatar_data' ), 10, 2 );
	}

	/**
	 * Short-circuits get_avatar_data() with the local picture for an account of this site.
	 *
	 * @param array $args        Avatar arguments (WordPress stops at a set 'url').
	 * @param mixed $id_or_email User id, WP_User, WP_Post, WP_Comment or e-mail address.
	 * @return array
	 */
	public static function avatar_data( $args, $id_or_email ) {
		if ( isset( $args['url'] ) ) {
			return $args; // Another plugin has chosen already.
		}
		$user = self::account( $id_or_email );
		/**
		 * Whether this account's avatar is the plugin's local picture (default true).
		 *
		 * @param bool    $local Local picture.
		 * @param WP_User $user  The account.
		 */
		if ( null === $user || ! apply_filters( 'firm_bridge_local_avatar', true, $user ) ) {
			return $args;
		}
		$args['url']          = plugins_url( 'assets/avatar.svg', FIRM_BRIDGE_FILE );
		$args['found_avatar'] = true;
		return $args;
	}

	/**
	 * The account an avatar request is about, as get_avatar_data() resolves it.
	 *
	 * @param mixed $id_or_email See avatar_data().
	 * @return WP_User|null
	 */
	private static function account( $id_or_email ) {
		if ( $id_or_email instanceof WP_User ) {
			return $id_or_email->exists() ? $id_or_email : null;
		}
		if ( is_numeric( $id_or_email ) ) {
			$id = (int) $id_or_email;
		} elseif ( $id_or_email instanceof WP_Post ) {
			$id = (int) $id_or_email->post_author;
		} elseif ( $id_or_email instanceof WP_Comment ) {
			$id          = (int) $id_or_email->user_id;
			$id_or_email = $id ? '' : $id_or_email->comment_author_email;
		} else {
			$id = 0;
		}
		$user = $id > 0 ? get_user_by( 'id', $id ) : false;
		if ( ! $user && is_string( $id_or_email ) && is_email( $id_or_email ) ) {
			$user = get_user_by( 'email', $id_or_email );
		}
		return $user instanceof WP_User ? $user : null;
	}
}
