<?php
/**
 * @package Firm_Bridge
 */

use PHPUnit\Framework\TestCase;

/**
 * Signing as bridge/web/signing.py signs.
 */
final class SignerTest extends TestCase {

	const SECRET = 'test-secret-0123456789abcdefghijklmnopqrstuvwxyz';

	/**
	 * A known answer computed with bridge/web/signing.py:
	 * sign(SECRET, "PUT", "/_firm/v1/people/12", "1700000000", "wp-0123456789abcdef",
	 *      b'{"login":"jdoe","display_name":"J\xc3\xa9r\xc3\xb4me Doe"}')
	 * (tests/wp/test_wp_units.py recomputes it with the Python code on every run).
	 */
	public function test_known_answer_matches_the_bridge() {
		$body = '{"login":"jdoe","display_name":"Jérôme Doe"}';
		$this->assertSame(
			'b5cc7447bca37cf3ad88602da36742713c8f0c2748453d7f779a3e4eebad0f5e',
			Firm_Bridge_Signer::sign( self::SECRET, 'PUT', '/_firm/v1/people/12', '1700000000', 'wp-0123456789abcdef', $body )
		);
	}

	public function test_canonical_upper_cases_the_method_and_keeps_the_body_bytes() {
		$this->assertSame( "POST\n/p?q=1\n5\nrid-12345\n\x00raw", Firm_Bridge_Signer::canonical( 'post', '/p?q=1', '5', 'rid-12345', "\x00raw" ) );
	}

	public function test_headers_carry_timestamp_id_and_signature() {
		$h = Firm_Bridge_Signer::headers( self::SECRET, 'POST', '/x', '', 'abcdefgh', 1700000000 );
		$this->assertSame( '1700000000', $h['X-Firm-Timestamp'] );
		$this->assertSame( 'abcdefgh', $h['X-Firm-Request-Id'] );
		$this->assertSame( Firm_Bridge_Signer::sign( self::SECRET, 'POST', '/x', '1700000000', 'abcdefgh', '' ), $h['X-Firm-Signature'] );
		$this->assertMatchesRegularExpression( '/\A[0-9a-f]{64}\z/', $h['X-Firm-Signature'] );
	}

	/**
	 * @param array $headers Request headers.
	 * @return callable
	 */
	private function reader( array $headers ) {
		return static function ( $name ) use ( $headers ) {
			return $headers[ $name ] ?? null;
		};
	}

	public function test_verify_accepts_a_good_request_and_returns_its_id() {
		$h = Firm_Bridge_Signer::headers( self::SECRET, 'POST', '/wp-json/firm-bridge/v1/login-check', '{}', 'rid-0001-abc', 1000 );
		$this->assertSame( 'rid-0001-abc', Firm_Bridge_Signer::verify( self::SECRET, 'POST', '/wp-json/firm-bridge/v1/login-check', $this->reader( $h ), '{}', 1200, 300 ) );
	}

	/**
	 * @return array
	 */
	public function refusals() {
		$good = Firm_Bridge_Signer::headers( self::SECRET, 'POST', '/p', '{}', 'rid-0001-abc', 1000 );
		return array(
			'no signature'      => array( array_diff_key( $good, array( 'X-Firm-Signature' => 1 ) ), '{}', 1000, 'X-Firm-Signature' ),
			'no timestamp'      => array( array_diff_key( $good, array( 'X-Firm-Timestamp' => 1 ) ), '{}', 1000, 'X-Firm-Timestamp' ),
			'no request id'     => array( array_diff_key( $good, array( 'X-Firm-Request-Id' => 1 ) ), '{}', 1000, 'X-Firm-Request-Id' ),
			'body changed'      => array( $good, '{"a":1}', 1000, 'X-Firm-Signature' ),
			'wrong key'         => array( array( 'X-Firm-Signature' => Firm_Bridge_Signer::sign( 'another-secret', 'POST', '/p', '1000', 'rid-0001-abc', '{}' ) ) + $good, '{}', 1000, 'X-Firm-Signature' ),
			'too old'           => array( $good, '{}', 1301, 'X-Firm-Timestamp' ),
			'from the future'   => array( $good, '{}', 699, 'X-Firm-Timestamp' ),
			'timestamp not int' => array( array( 'X-Firm-Timestamp' => '1000.5' ) + $good, '{}', 1000, 'X-Firm-Timestamp' ),
			'short request id'  => array( array( 'X-Firm-Request-Id' => 'abc' ) + $good, '{}', 1000, 'X-Firm-Request-Id' ),
			'id with a space'   => array( array( 'X-Firm-Request-Id' => 'rid 0001 abc' ) + $good, '{}', 1000, 'X-Firm-Request-Id' ),
		);
	}

	/**
	 * @dataProvider refusals
	 * @param array  $headers Headers.
	 * @param string $body    Body.
	 * @param int    $now     Clock.
	 * @param string $field   Header expected at fault.
	 */
	public function test_verify_refuses( $headers, $body, $now, $field ) {
		try {
			Firm_Bridge_Signer::verify( self::SECRET, 'POST', '/p', $this->reader( $headers ), $body, $now, 300 );
			$this->fail( 'accepted' );
		} catch ( Firm_Bridge_Signature_Error $e ) {
			$this->assertSame( $field, $e->field );
		}
	}

	public function test_verify_refuses_everything_without_a_secret() {
		$h = Firm_Bridge_Signer::headers( '', 'POST', '/p', '{}', 'rid-0001-abc', 1000 );
		$this->expectException( Firm_Bridge_Signature_Error::class );
		Firm_Bridge_Signer::verify( '', 'POST', '/p', $this->reader( $h ), '{}', 1000, 300 );
	}

	public function test_path_is_part_of_the_signature() {
		$h = Firm_Bridge_Signer::headers( self::SECRET, 'POST', '/index.php?rest_route=/firm-bridge/v1/login-check', '{}', 'rid-0001-abc', 1000 );
		$this->expectException( Firm_Bridge_Signature_Error::class );
		Firm_Bridge_Signer::verify( self::SECRET, 'POST', '/wp-json/firm-bridge/v1/login-check', $this->reader( $h ), '{}', 1000, 300 );
	}
}
