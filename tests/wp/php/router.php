<?php
/**
 * Router for PHP's built-in server: files are served as they are, everything else goes to
 * WordPress's index.php (pretty permalinks, /wp-json/).
 */
$root = rtrim( $_SERVER['DOCUMENT_ROOT'], '/' );
$path = urldecode( (string) parse_url( $_SERVER['REQUEST_URI'], PHP_URL_PATH ) );
if ( '/' !== $path && file_exists( $root . $path ) ) {
	return false;
}
$_SERVER['SCRIPT_NAME']     = '/index.php';
$_SERVER['SCRIPT_FILENAME'] = $root . '/index.php';
$_SERVER['PHP_SELF']        = '/index.php';
require $root . '/index.php';
