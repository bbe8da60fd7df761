<?php
/**
 * @package Firm_Bridge
 */

use PHPUnit\Framework\TestCase;

/**
 * WordPress people and matters -> provisioning bodies.
 */
final class MapperTest extends TestCase {

	/** @var array */
	private $dir = array(
		1 => array( 'role' => 'partner', 'active' => true ),
		2 => array( 'role' => 'associate', 'active' => true ),
		3 => array( 'role' => 'paralegal', 'active' => true ),
		4 => array( 'role' => 'client', 'active' => true ),
		5 => array( 'role' => 'partner', 'active' => false ),
		6 => array( 'role' => null, 'active' => true ),
		7 => array( 'role' => 'client', 'active' => true ),
	);

	/**
	 * @param array $over Fields to change.
	 * @return array
	 */
	private function user( array $over = array() ) {
		return $over + array(
			'id'           => 2,
			'login'        => 'jdoe',
			'display_name' => 'Jane  Doe',
			'email'        => 'jane@example.com',
			'roles'        => array( 'firm_associate' ),
			'suspended'    => false,
			'supervisor'   => '1',
			'attorneys'    => array(),
		);
	}

	public function test_firm_role_takes_the_first_by_precedence() {
		$this->assertSame( 'partner', Firm_Bridge_Mapper::firm_role( array( 'administrator', 'firm_partner' ) ) );
		$this->assertSame( 'administrator', Firm_Bridge_Mapper::firm_role( array( 'subscriber', 'administrator' ) ) );
		$this->assertSame( 'assistant', Firm_Bridge_Mapper::firm_role( array( 'firm_assistant' ) ) );
		$this->assertNull( Firm_Bridge_Mapper::firm_role( array( 'subscriber', 'editor' ) ) );
	}

	public function test_associate_with_supervisor() {
		$m = Firm_Bridge_Mapper::person( $this->user(), $this->dir );
		$this->assertSame(
			array(
				'login'        => 'jdoe',
				'display_name' => 'Jane Doe',
				'email'        => 'jane@example.com',
				'role'         => 'associate',
				'supervisor'   => 1,
				'attorneys'    => array(),
				'active'       => true,
			),
			$m['body']
		);
		$this->assertSame( array( 1 ), $m['deps'] );
		$this->assertSame( array(), $m['dropped'] );
	}

	public function test_no_firm_role_is_not_sent() {
		$this->assertNull( Firm_Bridge_Mapper::person( $this->user( array( 'roles' => array( 'subscriber' ) ) ), $this->dir ) );
	}

	public function test_departed_or_wrong_role_supervisor_is_dropped_and_reported() {
		$m = Firm_Bridge_Mapper::person( $this->user( array( 'supervisor' => 5 ) ), $this->dir );
		$this->assertNull( $m['body']['supervisor'] );
		$this->assertSame( array( array( 'field' => 'supervisor', 'id' => 5, 'why' => 'has departed' ) ), $m['dropped'] );
		$m = Firm_Bridge_Mapper::person( $this->user( array( 'supervisor' => 4 ) ), $this->dir );
		$this->assertSame( 'is a client', $m['dropped'][0]['why'] );
	}

	public function test_supervisor_only_for_associates_and_attorneys_only_for_clients_and_paralegals() {
		$partner = Firm_Bridge_Mapper::person( $this->user( array( 'id' => 1, 'roles' => array( 'firm_partner' ), 'supervisor' => 5, 'attorneys' => array( 2 ) ) ), $this->dir );
		$this->assertNull( $partner['body']['supervisor'] );
		$this->assertSame( array(), $partner['body']['attorneys'] );
		$client = Firm_Bridge_Mapper::person( $this->user( array( 'id' => 4, 'roles' => array( 'firm_client' ), 'attorneys' => array( '2', 1, 3, 2, 'x', 4 ) ) ), $this->dir );
		$this->assertSame( array( 1, 2 ), $client['body']['attorneys'] );
		$this->assertSame( array( 'is a paralegal', 'is the person themself' ), array_column( $client['dropped'], 'why' ) );
		$this->assertNull( $client['body']['supervisor'] );
	}

	public function test_suspended_is_inactive_and_erased_loses_name_and_email() {
		$this->assertFalse( Firm_Bridge_Mapper::person( $this->user( array( 'suspended' => true ) ), $this->dir )['body']['active'] );
		$erased = Firm_Bridge_Mapper::person( $this->user( array( 'erased' => true ) ), $this->dir )['body'];
		$this->assertFalse( $erased['active'] );
		$this->assertSame( 'Former member 2', $erased['display_name'] );
		$this->assertSame( '', $erased['email'] );
		$this->assertSame( 'jdoe', $erased['login'] );
	}

	public function test_text_is_cleaned_for_the_bridge() {
		$this->assertSame( 'Smith & Jones <b>', Firm_Bridge_Mapper::text( "Smith &amp; Jones\n\t&lt;b&gt;" ) );
		$this->assertSame( 255, mb_strlen( Firm_Bridge_Mapper::text( str_repeat( 'é', 400 ) ) ) );
		$m = Firm_Bridge_Mapper::person( $this->user( array( 'display_name' => " \n", 'email' => 'not an email' ) ), $this->dir );
		$this->assertSame( 'jdoe', $m['body']['display_name'] );
		$this->assertSame( '', $m['body']['email'] );
	}

	/**
	 * @param array $over Fields to change.
	 * @return array
	 */
	private function matter( array $over = array() ) {
		return $over + array(
			'id'                  => 40,
			'number'              => '2026-0042',
			'title'               => 'Estate of <script>alert(1)</script> Smith',
			'post_status'         => 'publish',
			'status'              => 'open',
			'privileged'          => '1',
			'clients'             => array( 4, 7 ),
			'responsible_partner' => 1,
			'associates'          => array( 2 ),
			'paralegals'          => array( 3 ),
		);
	}

	public function test_matter_body() {
		$m = Firm_Bridge_Mapper::matter( $this->matter(), $this->dir );
		$this->assertSame(
			array(
				'number'              => '2026-0042',
				'title'               => 'Estate of <script>alert(1)</script> Smith',
				'clients'             => array( 4, 7 ),
				'responsible_partner' => 1,
				'associates'          => array( 2 ),
				'paralegals'          => array( 3 ),
				'privileged'          => true,
				'status'              => 'open',
			),
			$m['body']
		);
		$this->assertSame( array( 4, 7, 1, 2, 3 ), $m['deps'] );
	}

	public function test_matter_drops_people_who_cannot_hold_the_capacity_and_duplicates() {
		$m = Firm_Bridge_Mapper::matter(
			$this->matter(
				array(
					'clients'             => array( 4, 2 ),
					'responsible_partner' => 1,
					'associates'          => array( 1, 5, 4, 6 ),
					'paralegals'          => array( 3, 99 ),
				)
			),
			$this->dir
		);
		$this->assertSame( array( 4 ), $m['body']['clients'] );
		$this->assertSame( 1, $m['body']['responsible_partner'] );
		$this->assertSame( array(), $m['body']['associates'] );
		$this->assertSame( array( 3 ), $m['body']['paralegals'] );
		$this->assertSame(
			array( 'clients:2:is a associate', 'associates:1:is already assigned as responsible_partner', 'associates:5:has departed', 'associates:4:is a client', 'associates:6:has no firm role', 'paralegals:99:no such person' ),
			array_map( static fn( $d ) => $d['field'] . ':' . $d['id'] . ':' . $d['why'], $m['dropped'] )
		);
	}

	public function test_retention_is_sent_only_when_set() {
		$plain = Firm_Bridge_Mapper::matter( $this->matter(), $this->dir )['body'];
		$this->assertArrayNotHasKey( 'legal_hold', $plain );
		$this->assertArrayNotHasKey( 'retention_open_days', $plain );
		$m = Firm_Bridge_Mapper::matter(
			$this->matter(
				array(
					'legal_hold'            => '1',
					'retention_open_days'   => '365',
					'retention_closed_days' => '2555.5',
					'retention_media_days'  => '0',
				)
			),
			$this->dir
		)['body'];
		$this->assertTrue( $m['legal_hold'] );
		$this->assertSame( 365, $m['retention_open_days'] );
		$this->assertSame( 2555.5, $m['retention_closed_days'] );
		$this->assertArrayNotHasKey( 'retention_media_days', $m );
		$this->assertNull( Firm_Bridge_Mapper::days( '-3' ) );
		$this->assertNull( Firm_Bridge_Mapper::days( 'ten' ) );
		$this->assertNull( Firm_Bridge_Mapper::days( 400000 ) );
	}

	public function test_trashed_or_draft_matter_is_closed_and_number_falls_back() {
		foreach ( array( 'trash', 'draft', 'pending' ) as $status ) {
			$this->assertSame( 'closed', Firm_Bridge_Mapper::matter( $this->matter( array( 'post_status' => $status ) ), $this->dir )['body']['status'] );
		}
		$this->assertSame( 'closed', Firm_Bridge_Mapper::matter( $this->matter( array( 'status' => 'closed' ) ), $this->dir )['body']['status'] );
		$m = Firm_Bridge_Mapper::matter( $this->matter( array( 'number' => '', 'title' => '' ) ), $this->dir );
		$this->assertSame( 'M-40', $m['body']['number'] );
		$this->assertSame( 'M-40', $m['body']['title'] );
		$this->assertFalse( Firm_Bridge_Mapper::matter( $this->matter( array( 'privileged' => '' ) ), $this->dir )['body']['privileged'] );
	}
}
