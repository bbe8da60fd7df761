<?php
/**
 * @package Firm_Bridge
 */

use PHPUnit\Framework\TestCase;

/**
 * What an outbox row changes, in the field's words.
 */
final class ChangesTest extends TestCase {

	/**
	 * @param array $over Fields to change.
	 * @return array A matter body.
	 */
	private function matter( array $over = array() ) {
		return array_merge(
			array(
				'number'              => 'M-1',
				'title'               => 'Estate',
				'clients'             => array( 3, 4 ),
				'responsible_partner' => 2,
				'associates'          => array(),
				'paralegals'          => array( 5 ),
				'privileged'          => false,
				'status'              => 'open',
			),
			$over
		);
	}

	public function test_matter_flags_are_named_with_their_new_value() {
		$d = Firm_Bridge_Changes::describe( 'matter', 'PUT', '/_firm/v1/matters/9', $this->matter( array( 'privileged' => true, 'legal_hold' => true ) ), $this->matter() );
		$this->assertSame( array( 'privileged: on', 'legal hold: on' ), $d );
		$d = Firm_Bridge_Changes::describe( 'matter', 'PUT', '/_firm/v1/matters/9', $this->matter( array( 'status' => 'closed' ) ), $this->matter( array( 'legal_hold' => true ) ) );
		$this->assertSame( array( 'legal hold: off', 'status: closed' ), $d );
	}

	public function test_matter_fields_and_list_order() {
		$d = Firm_Bridge_Changes::describe( 'matter', 'PUT', '/_firm/v1/matters/9', $this->matter( array( 'clients' => array( 4, 3 ), 'title' => 'Estate of X', 'retention_open_days' => 30 ) ), $this->matter() );
		$this->assertSame( array( 'title', 'retention' ), $d );
		$d = Firm_Bridge_Changes::describe( 'matter', 'PUT', '/_firm/v1/matters/9', $this->matter(), $this->matter() );
		$this->assertSame( array( 'no change (sent again)' ), $d );
		$this->assertSame( array( 'new matter' ), Firm_Bridge_Changes::describe( 'matter', 'PUT', '/_firm/v1/matters/9', $this->matter(), null ) );
	}

	public function test_people() {
		$p = array(
			'login'        => 'ann',
			'display_name' => 'Ann',
			'email'        => 'ann@example.com',
			'role'         => 'associate',
			'supervisor'   => 2,
			'attorneys'    => array(),
			'active'       => true,
		);
		$d = Firm_Bridge_Changes::describe( 'person', 'PUT', '/_firm/v1/people/7', array_merge( $p, array( 'active' => false, 'display_name' => 'Ann B' ) ), $p );
		$this->assertSame( array( 'departed', 'name' ), $d );
		$d = Firm_Bridge_Changes::describe( 'person', 'PUT', '/_firm/v1/people/7', array_merge( $p, array( 'role' => 'partner', 'supervisor' => null ) ), $p );
		$this->assertSame( array( 'role: partner', 'supervising partner' ), $d );
		$this->assertSame( array( 'departure: sessions end, rooms are left' ), Firm_Bridge_Changes::describe( 'person', 'POST', '/_firm/v1/people/7/deactivate', null, $p ) );
	}

	public function test_policy_names_the_roles_changed() {
		$t = array(
			'max_group_size' => 8,
			'roles'          => array(
				'client'  => array( 'power_level' => 10, 'matter_rooms' => 'assigned', 'conversations' => array( 'assigned_attorneys' ) ),
				'partner' => array( 'power_level' => 50, 'matter_rooms' => 'assigned', 'conversations' => array( 'firm_members', 'assigned_clients' ) ),
			),
		);
		$u                                    = $t;
		$u['roles']['client']['power_level']  = 15;
		$u['roles']['partner']['conversations'] = array( 'assigned_clients', 'firm_members' );
		$d = Firm_Bridge_Changes::describe( 'policy', 'PUT', '/_firm/v1/policy', array( 'policy' => $u ), array( 'policy' => $t ) );
		$this->assertSame( array( 'role table: client' ), $d );
		$this->assertSame( array( 'role table' ), Firm_Bridge_Changes::describe( 'policy', 'PUT', '/_firm/v1/policy', array( 'policy' => $u ), null ) );
	}
}
