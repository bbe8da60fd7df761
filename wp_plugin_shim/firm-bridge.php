<?php
/**
 * Plugin Name:       Firm Bridge
 * Description:       Firm roles, matters and assignments managed in wp-admin, synced to the firm's Matrix bridge through a signed outbox; login check for the homeserver; the portal chat mount point.
 * Version:           0.1.0
 * Requires at least: 6.1
 * Requires PHP:      8.2
 * Author:            Firm bridge team
 * License:           GPL-2.0-or-later
 * Text Domain:       firm-bridge
 *
 * @package Firm_Bridge
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

define( 'FIRM_BRIDGE_VERSION', '0.1.0' );
define( 'FIRM_BRIDGE_FILE', __FILE__ );
define( 'FIRM_BRIDGE_DIR', __DIR__ );

require_once __DIR__ . '/includes/class-firm-bridge-signer.php';
require_once __DIR__ . '/includes/class-firm-bridge-mapper.php';
require_once __DIR__ . '/includes/class-firm-bridge-order.php';
require_once __DIR__ . '/includes/class-firm-bridge-handover.php';
require_once __DIR__ . '/includes/class-firm-bridge-policy-doc.php';
require_once __DIR__ . '/includes/class-firm-bridge-settings.php';
require_once __DIR__ . '/includes/class-firm-bridge-client.php';
require_once __DIR__ . '/includes/class-firm-bridge-outbox.php';
require_once __DIR__ . '/includes/class-firm-bridge-changes.php';
require_once __DIR__ . '/includes/class-firm-bridge-roles.php';
require_once __DIR__ . '/includes/class-firm-bridge-people.php';
require_once __DIR__ . '/includes/class-firm-bridge-matters.php';
require_once __DIR__ . '/includes/class-firm-bridge-matters-controller.php';
require_once __DIR__ . '/includes/class-firm-bridge-walls.php';
require_once __DIR__ . '/includes/class-firm-bridge-sync.php';
require_once __DIR__ . '/includes/class-firm-bridge-admin.php';
require_once __DIR__ . '/includes/class-firm-bridge-settings-page.php';
require_once __DIR__ . '/includes/class-firm-bridge-restrictions-page.php';
require_once __DIR__ . '/includes/class-firm-bridge-landing.php';
require_once __DIR__ . '/includes/class-firm-bridge-rest.php';
require_once __DIR__ . '/includes/class-firm-bridge-login-check.php';
require_once __DIR__ . '/includes/class-firm-bridge-rooms.php';
require_once __DIR__ . '/includes/class-firm-bridge-portal.php';
require_once __DIR__ . '/includes/class-firm-bridge-widget-assets.php';
require_once __DIR__ . '/includes/class-firm-bridge-widget-rest.php';
require_once __DIR__ . '/includes/class-firm-bridge-avatars.php';
require_once __DIR__ . '/includes/class-firm-bridge-privacy.php';
require_once __DIR__ . '/includes/class-firm-bridge-notices.php';

register_activation_hook( __FILE__, array( 'Firm_Bridge_Plugin', 'activate' ) );
register_deactivation_hook( __FILE__, array( 'Firm_Bridge_Plugin', 'deactivate' ) );

/**
 * Wires the parts to WordPress.
 */
final class Firm_Bridge_Plugin {

	const DB_VERSION = '2';

	/**
	 * Hooks everything up (on plugins_loaded).
	 */
	public static function boot() {
		self::maybe_upgrade();
		Firm_Bridge_Roles::hooks();
		Firm_Bridge_People::hooks();
		Firm_Bridge_Matters::hooks();
		Firm_Bridge_Walls::hooks();
		Firm_Bridge_Sync::hooks();
		Firm_Bridge_Outbox::hooks();
		Firm_Bridge_Admin::hooks();
		Firm_Bridge_Settings_Page::hooks();
		Firm_Bridge_Restrictions_Page::hooks();
		Firm_Bridge_Landing::hooks();
		Firm_Bridge_Rest::hooks();
		Firm_Bridge_Login_Check::hooks();
		Firm_Bridge_Portal::hooks();
		Firm_Bridge_Widget_Assets::hooks();
		Firm_Bridge_Widget_Rest::hooks();
		Firm_Bridge_Avatars::hooks();
		Firm_Bridge_Privacy::hooks();
		Firm_Bridge_Notices::hooks();
		if ( defined( 'WP_CLI' ) && WP_CLI ) {
			require_once __DIR__ . '/includes/class-firm-bridge-cli.php';
			WP_CLI::add_command( 'firm-bridge', 'Firm_Bridge_CLI' );
		}
	}

	/**
	 * Tables, roles and the cron safety net.
	 */
	public static function activate() {
		Firm_Bridge_Outbox::install();
		Firm_Bridge_Login_Check::install();
		Firm_Bridge_Roles::install();
		Firm_Bridge_Settings::install();
		Firm_Bridge_Notices::install();
		update_option( 'firm_bridge_db_version', self::DB_VERSION, false );
		Firm_Bridge_Outbox::schedule_tick();
	}

	/**
	 * Stops the cron events; the outbox and settings stay (uninstall.php removes them).
	 */
	public static function deactivate() {
		wp_clear_scheduled_hook( Firm_Bridge_Outbox::TICK_HOOK );
		wp_unschedule_hook( Firm_Bridge_Outbox::DELIVER_HOOK );
	}

	/**
	 * Tables are created on activation; an updated plugin migrates on its first load.
	 */
	private static function maybe_upgrade() {
		if ( get_option( 'firm_bridge_db_version' ) !== self::DB_VERSION ) {
			self::activate();
		}
	}
}

add_action( 'plugins_loaded', array( 'Firm_Bridge_Plugin', 'boot' ) );
