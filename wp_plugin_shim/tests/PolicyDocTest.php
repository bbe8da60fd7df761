<?php
/**
 * @package Firm_Bridge
 */

use PHPUnit\Framework\TestCase;

/**
 * The Restrictions screen's document.
 */
final class PolicyDocTest extends TestCase {

	public function test_a_policy_with_extra_keys_is_kept_whole() {
		$text = '{"version":1,"max_group_size":8,"future_rule":{"x":[1]},"roles":{"partner":{"power_level":50,"matter_rooms":"assigned","conversations":["firm_members"]},"client":{}}}';
		$p    = Firm_Bridge_Policy_Doc::parse( $text );
		$this->assertNull( $p['error'] );
		$this->assertSame( array( 'x' => array( 1 ) ), $p['policy']['future_rule'] );
		$body = json_decode( Firm_Bridge_Policy_Doc::body( $p['policy'] ) );
		$this->assertSame( 50, $body->policy->roles->partner->power_level );
		// An empty role stays an object, not a list.
		$this->assertInstanceOf( stdClass::class, $body->policy->roles->client );
		$this->assertSame( $p['policy'], Firm_Bridge_Policy_Doc::parse( Firm_Bridge_Policy_Doc::pretty( $p['policy'] ) )['policy'] );
	}

	/**
	 * @return array
	 */
	public function bad() {
		return array(
			'not json'      => array( '{roles: 1}', 'not valid JSON' ),
			'empty'         => array( '  ', 'empty' ),
			'a list'        => array( '[1,2]', 'must be a JSON object' ),
			'no roles'      => array( '{"version":1}', '"roles"' ),
			'roles a list'  => array( '{"roles":[1]}', '"roles"' ),
			'role a string' => array( '{"roles":{"partner":"x"}}', 'roles.partner' ),
			'too deep'      => array( str_repeat( '[', 40 ) . str_repeat( ']', 40 ), 'not valid JSON' ),
			'too large'     => array( '{"roles":{},"x":"' . str_repeat( 'a', 70000 ) . '"}', 'larger than' ),
		);
	}

	/**
	 * @dataProvider bad
	 * @param string $text     Input.
	 * @param string $contains Part of the error.
	 */
	public function test_refused_with_a_reason( $text, $contains ) {
		$p = Firm_Bridge_Policy_Doc::parse( $text );
		$this->assertNull( $p['policy'] );
		$this->assertStringContainsString( $contains, $p['error'] );
	}
}
