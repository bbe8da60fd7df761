<?php
/**
 * Router for PHP's built-in server: files are served as they are, everything else goes to
 * WordPress's index.php (pretty permalinks, /wp-json/).
 */
$root = rtrim( $_SERVER['DOCUMENT_ROOT'], '/' );
$path = urldecode( (string) parse_url( $_SERVER['REQUEST_URI'], PHP_URL_PATH ) );
// The portal widget's built files, as the README's nginx/Apache lines serve them: hashed names
// kept for a year, the wasm as application/wasm.
if ( preg_match( '#/widget/dist/[A-Za-z0-9_-]+\.(js|css|wasm)$#', $path, $m ) && is_file( $root . $path ) ) {
	$types = array( 'js' => 'text/javascript', 'css' => 'text/css', 'wasm' => 'application/wasm' );
	header( 'Content-Type: ' . $types[ $m[1] ] );
	header( 'Cache-Control: public, max-age=31536000, immutable' );
	header( 'Content-Length: ' . filesize( $root . $path ) );
	readfile( $root . $path );
	return true;
}
// WordPress's own static files (core, themes, plugins), as the README's nginx lines serve them:
// a month's cache, since WordPress puts the version in every URL it enqueues (?ver=). PHP's
// server alone sends no Cache-Control, Last-Modified or ETag, so a browser fetches them again on
// every page; any real web server at least lets them be revalidated.
$static = array(
	'js'    => 'text/javascript',
	'css'   => 'text/css',
	'svg'   => 'image/svg+xml',
	'png'   => 'image/png',
	'jpg'   => 'image/jpeg',
	'jpeg'  => 'image/jpeg',
	'gif'   => 'image/gif',
	'webp'  => 'image/webp',
	'ico'   => 'image/x-icon',
	'woff'  => 'font/woff',
	'woff2' => 'font/woff2',
);
if ( preg_match( '#^/wp-(includes|content/(themes|plugins))/.+\.([a-z0-9]+)$#', $path, $m )
	&& isset( $static[ $m[3] ] ) && is_file( $root . $path ) ) {
	header( 'Content-Type: ' . $static[ $m[3] ] );
	header( 'Cache-Control: public, max-age=2592000' );
	header( 'Content-Length: ' . filesize( $root . $path ) );
	readfile( $root . $path );
	return true;
}
if ( '/' !== $path && file_exists( $root . $path ) ) {
	return false;
}
// FIRM_WP_GZIP_HTML=1 (the widget benchmark): pages gzipped as Debian's stock nginx does
// (`gzip on;` with its default types and level: text/html only, level 1), so the benchmark's
// bytes are what a browser receives from a default nginx. The tests see PHP's plain output.
if ( '1' === getenv( 'FIRM_WP_GZIP_HTML' )
	&& false !== strpos( (string) ( $_SERVER['HTTP_ACCEPT_ENCODING'] ?? '' ), 'gzip' ) ) {
	ob_start(
		static function ( string $chunk, int $phase ) {
			static $gzip = null; // the deflate context once the page is known to be HTML
			if ( null === $gzip ) {
				$type = 'Content-Type: text/html'; // PHP's default when none was set
				foreach ( headers_list() as $h ) {
					if ( 0 === stripos( $h, 'Content-Type:' ) ) {
						$type = $h;
					}
				}
				$gzip = false;
				if ( 0 === stripos( $type, 'Content-Type: text/html' ) && ! headers_sent() ) {
					header( 'Content-Encoding: gzip' );
					header( 'Vary: Accept-Encoding' );
					header_remove( 'Content-Length' );
					$gzip = deflate_init( ZLIB_ENCODING_GZIP, array( 'level' => 1 ) );
				}
			}
			if ( false === $gzip ) {
				return $chunk;
			}
			$final = (bool) ( $phase & PHP_OUTPUT_HANDLER_FINAL );
			return (string) deflate_add( $gzip, $chunk, $final ? ZLIB_FINISH : ZLIB_SYNC_FLUSH );
		}
	);
}
$_SERVER['SCRIPT_NAME']     = '/index.php';
$_SERVER['SCRIPT_FILENAME'] = $root . '/index.php';
$_SERVER['PHP_SELF']        = '/index.php';
require $root . '/index.php';
