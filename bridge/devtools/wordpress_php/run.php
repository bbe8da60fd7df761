<?php
/**
 * Runs PHP from standard input inside the test WordPress (after wp-load.php, with the plugin
 * loaded), as a function body, and prints its return value as JSON after a marker line. The
 * request ends like any other: the plugin's shutdown work (writing outbox rows, delivering) runs.
 *
 * Environment: WP_ROOT, WP_URL, WP_AS_USER (optional user id to act as).
 */
$_SERVER['HTTP_HOST']   = parse_url( getenv( 'WP_URL' ), PHP_URL_HOST ) . ':' . parse_url( getenv( 'WP_URL' ), PHP_URL_PORT );
$_SERVER['REQUEST_URI'] = '/';
require getenv( 'WP_ROOT' ) . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/user.php';
require_once ABSPATH . 'wp-admin/includes/post.php';
require_once ABSPATH . 'wp-admin/includes/plugin.php';
if ( getenv( 'WP_AS_USER' ) ) {
	wp_set_current_user( (int) getenv( 'WP_AS_USER' ) );
}
$code   = stream_get_contents( STDIN );
$fn     = eval( 'return function () { ' . $code . ' };' );
$result = $fn();
echo "\n@@FIRM-TEST-RESULT@@\n" . wp_json_encode( $result );
