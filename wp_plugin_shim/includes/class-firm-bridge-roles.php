<?php
/**
 * The firm's roles and the capabilities that guard matters and the plugin's screens.
 *
 * @package Firm_Bridge
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * Role and capability registration.
 */
final class Firm_Bridge_Roles {

	/** Settings, Restrictions, Outbox, resync. */
	const MANAGE = 'firm_bridge_manage';
	/** Reading the audit trail (administrators; the audit screens come with the audit work). */
	const AUDIT = 'firm_bridge_read_audit';

	/** Capabilities of the Matter post type (capability_type firm_matter / firm_matters). */
	const MATTER_CAPS = array(
		'edit_firm_matters',
		'edit_others_firm_matters',
		'edit_published_firm_matters',
		'edit_private_firm_matters',
		'publish_firm_matters',
		'read_private_firm_matters',
		'delete_firm_matters',
		'delete_others_firm_matters',
		'delete_published_firm_matters',
		'delete_private_firm_matters',
	);

	/**
	 * WordPress role slug => display name.
	 *
	 * @return array<string,string>
	 */
	public static function firm_roles() {
		return array(
			'firm_partner'   => __( 'Partner', 'firm-bridge' ),
			'firm_associate' => __( 'Associate', 'firm-bridge' ),
			'firm_paralegal' => __( 'Paralegal', 'firm-bridge' ),
			'firm_assistant' => __( 'Legal assistant', 'firm-bridge' ),
			'firm_client'    => __( 'Client', 'firm-bridge' ),
		);
	}

	/**
	 * Keeps roles present after an upgrade.
	 */
	public static function hooks() {
		add_action(
			'init',
			static function () {
				if ( ! get_role( 'firm_partner' ) ) {
					self::install();
				}
			}
		);
	}

	/**
	 * Adds the roles and grants capabilities. Only administrators and partners edit matters.
	 */
	public static function install() {
		foreach ( self::firm_roles() as $slug => $name ) {
			if ( ! get_role( $slug ) ) {
				add_role( $slug, $name, array( 'read' => true ) );
			}
		}
		foreach ( array( 'administrator', 'firm_partner' ) as $slug ) {
			$role = get_role( $slug );
			if ( $role ) {
				foreach ( self::MATTER_CAPS as $cap ) {
					$role->add_cap( $cap );
				}
			}
		}
		$admin = get_role( 'administrator' );
		if ( $admin ) {
			$admin->add_cap( self::MANAGE );
			$admin->add_cap( self::AUDIT );
		}
	}
}
