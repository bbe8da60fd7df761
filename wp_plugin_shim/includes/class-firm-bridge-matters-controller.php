<?php
/**
 * REST controller for matters. WordPress's posts controller lets anyone read published posts of
 * a REST-visible type; matters are confidential, so reading them needs the matter capability,
 * like editing does.
 *
 * @package Firm_Bridge
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * Matters over REST, for people who may edit matters only.
 */
class Firm_Bridge_Matters_Controller extends WP_REST_Posts_Controller {

	/**
	 * @param WP_REST_Request $request Request.
	 * @return true|WP_Error
	 */
	public function get_items_permissions_check( $request ) {
		if ( ! current_user_can( 'edit_firm_matters' ) ) {
			return new WP_Error( 'rest_forbidden', __( 'Sorry, you are not allowed to read matters.', 'firm-bridge' ), array( 'status' => rest_authorization_required_code() ) );
		}
		return parent::get_items_permissions_check( $request );
	}

	/**
	 * @param WP_REST_Request $request Request.
	 * @return bool|WP_Error
	 */
	public function get_item_permissions_check( $request ) {
		if ( ! current_user_can( 'edit_firm_matters' ) ) {
			return new WP_Error( 'rest_forbidden', __( 'Sorry, you are not allowed to read matters.', 'firm-bridge' ), array( 'status' => rest_authorization_required_code() ) );
		}
		return parent::get_item_permissions_check( $request );
	}

	/**
	 * @param WP_Post $post Post.
	 * @return bool
	 */
	public function check_read_permission( $post ) {
		return current_user_can( 'edit_post', $post->ID ) && parent::check_read_permission( $post );
	}
}
