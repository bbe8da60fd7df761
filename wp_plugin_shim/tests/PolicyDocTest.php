<?php
/**
 * @package Firm_Bridge
 */

use PHPUnit\Framework\TestCase;

/**
 * The Restrictions screen's document.
 */
final class PolicyDocTest extends TestCase {

	/**
	 * The shipped table's shape, as JSON.
	 *
	 * @return array
	 */
	private function table() {
		$roles = array();
		foreach ( Firm_Bridge_Policy_Doc::ROLES as $i => $role ) {
			$roles[ $role ] = array(
				'power_level'   => 10 * $i,
				'matter_rooms'  => 'assigned',
				'conversations' => array(),
			);
		}
		return array(
			'version'        => 1,
			'max_group_size' => 8,
			'roles'          => $roles,
		);
	}

	public function test_a_policy_with_extra_keys_is_kept_whole() {
		$doc                = $this->table();
		$doc['future_rule'] = array( 'x' => array( 1 ) );
		$doc['roles']['partner']['conversations'] = array( 'firm_members' );
		$p = Firm_Bridge_Policy_Doc::parse( (string) json_encode( $doc ) );
		$this->assertNull( $p['error'] );
		$this->assertSame( array( 'x' => array( 1 ) ), $p['policy']['future_rule'] );
		$body = json_decode( Firm_Bridge_Policy_Doc::body( $p['policy'] ) );
		$this->assertSame( 0, $body->policy->roles->partner->power_level );
		$this->assertSame( array( 'firm_members' ), $body->policy->roles->partner->conversations );
		$this->assertSame( $p['policy'], Firm_Bridge_Policy_Doc::parse( Firm_Bridge_Policy_Doc::pretty( $p['policy'] ) )['policy'] );
	}

	public function test_a_refusal_names_the_field() {
		$doc                                   = $this->table();
		$doc['roles']['client']['power_level'] = 100;
		$p = Firm_Bridge_Policy_Doc::parse( (string) json_encode( $doc ) );
		$this->assertNull( $p['policy'] );
		$this->assertSame( 'roles.client.power_level', $p['field'] );
		$this->assertSame( 'roles.client.power_level must be an integer from 0 to 99', $p['error'] );
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
			'role a string' => array( '{"roles":{"partner":"x"}}', "role 'partner' must be an object" ),
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
