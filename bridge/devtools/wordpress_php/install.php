<?php
/**
 * Installs the throwaway WordPress the tests run (wp-config.php is already written): creates its
 * database, runs WordPress's own installer, activates the plugin, turns on pretty permalinks and
 * makes an application password for the administrator. Prints JSON.
 *
 * Environment: WP_ROOT, WP_ADMIN_PASSWORD.
 */
$root = getenv( 'WP_ROOT' );
require $root . '/wp-config-db.php';
$link = mysqli_connect( FIRM_TEST_DB_HOST, FIRM_TEST_DB_USER, FIRM_TEST_DB_PASSWORD, '', FIRM_TEST_DB_PORT );
mysqli_query( $link, 'CREATE DATABASE IF NOT EXISTS `' . FIRM_TEST_DB_NAME . '` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci' );
mysqli_close( $link );

define( 'WP_INSTALLING', true );
$_SERVER['HTTP_HOST'] = parse_url( getenv( 'WP_URL' ), PHP_URL_HOST ) . ':' . parse_url( getenv( 'WP_URL' ), PHP_URL_PORT );
require $root . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
require_once ABSPATH . 'wp-admin/includes/plugin.php';

$result = wp_install( 'Hartley & Vance LLP', 'admin', 'admin@example.com', false, '', getenv( 'WP_ADMIN_PASSWORD' ) );
update_option( 'permalink_structure', '/%postname%/' );
// This machine has no network: avatars would be fetched from gravatar.com by every page.
update_option( 'show_avatars', 0 );
// WordPress asks the first wp-admin visitor to test script compression (an ajax call that answers
// 400 to anyone who may not manage options); a site that ran it once has the answer stored.
update_site_option( 'can_compress_scripts', 0 );
flush_rewrite_rules( false );
$activated = activate_plugin( 'firm-bridge/firm-bridge.php' );
if ( is_wp_error( $activated ) ) {
	fwrite( STDERR, $activated->get_error_message() . "\n" );
	exit( 1 );
}
list( $app_password ) = WP_Application_Passwords::create_new_application_password( (int) $result['user_id'], array( 'name' => 'tests' ) );
echo json_encode(
	array(
		'admin_id'     => (int) $result['user_id'],
		'app_password' => $app_password,
	)
);
