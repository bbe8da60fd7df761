<?php
/**
 * Removing the plugin removes its settings and tables. The bridge keeps what it was sent.
 *
 * @package Firm_Bridge
 */

if ( ! defined( 'WP_UNINSTALL_PLUGIN' ) ) {
	exit;
}

global $wpdb;
foreach ( array( 'firm_bridge_url', 'firm_bridge_secret', 'firm_bridge_homeserver', 'firm_bridge_policy', 'firm_bridge_timeout', 'firm_bridge_retry_base', 'firm_bridge_retry_max', 'firm_bridge_down_until', 'firm_bridge_db_version', 'firm_bridge_dummy_hash', 'firm_bridge_login_limits', 'firm_bridge_assignments_restricted', 'firm_bridge_chat_page', 'firm_bridge_notice_titles' ) as $option ) {
	delete_option( $option );
}
// Table names cannot be placeholders before WordPress 6.2; only the prefix is interpolated.
$wpdb->query( "DROP TABLE IF EXISTS {$wpdb->prefix}firm_bridge_outbox" );
$wpdb->query( "DROP TABLE IF EXISTS {$wpdb->prefix}firm_bridge_seen" );
$wpdb->query( "DROP TABLE IF EXISTS {$wpdb->prefix}firm_bridge_notices" );
delete_metadata( 'user', 0, '_firm_bridge_known', '', true );
delete_metadata( 'user', 0, '_firm_bridge_hash', '', true );
delete_metadata( 'user', 0, '_firm_bridge_active', '', true );
delete_metadata( 'user', 0, '_firm_bridge_login_addresses', '', true );
delete_metadata( 'user', 0, 'firm_bridge_notice_delay', '', true );
