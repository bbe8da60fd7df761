<?php
/**
 * @package Firm_Bridge
 */

use PHPUnit\Framework\TestCase;

/**
 * Departures mirrored as the bridge applies them.
 */
final class HandoverTest extends TestCase {

	/** @var array */
	private $dir = array(
		1 => array( 'role' => 'partner', 'active' => true ),
		5 => array( 'role' => 'partner', 'active' => false ),
		2 => array( 'role' => 'associate', 'active' => true ),
	);

	public function test_successor_is_an_active_supervising_partner() {
		$this->assertSame( 1, Firm_Bridge_Handover::successor( 1, $this->dir ) );
		$this->assertNull( Firm_Bridge_Handover::successor( 5, $this->dir ) );
		$this->assertNull( Firm_Bridge_Handover::successor( 2, $this->dir ) );
		$this->assertNull( Firm_Bridge_Handover::successor( null, $this->dir ) );
	}

	/**
	 * @return array
	 */
	private function matter() {
		return array(
			'clients'             => array( 10, 11 ),
			'responsible_partner' => 20,
			'associates'          => array( 21 ),
			'paralegals'          => array( 22 ),
		);
	}

	public function test_associate_replaced_by_partner() {
		$new = Firm_Bridge_Handover::matter( $this->matter(), 21, 1 );
		$this->assertSame( array( 1 ), $new['associates'] );
		$this->assertSame( 20, $new['responsible_partner'] );
	}

	public function test_paralegal_place_is_taken_as_associate() {
		$new = Firm_Bridge_Handover::matter( $this->matter(), 22, 1 );
		$this->assertSame( array(), $new['paralegals'] );
		$this->assertSame( array( 21, 1 ), $new['associates'] );
	}

	public function test_responsible_partner_replaced() {
		$this->assertSame( 1, Firm_Bridge_Handover::matter( $this->matter(), 20, 1 )['responsible_partner'] );
		$this->assertNull( Firm_Bridge_Handover::matter( $this->matter(), 20, null )['responsible_partner'] );
	}

	public function test_successor_already_on_the_matter_keeps_their_capacity() {
		$new = Firm_Bridge_Handover::matter( $this->matter(), 21, 20 );
		$this->assertSame( array(), $new['associates'] );
		$this->assertSame( 20, $new['responsible_partner'] );
	}

	public function test_a_departed_client_stays_on_the_record() {
		$this->assertNull( Firm_Bridge_Handover::matter( $this->matter(), 10, 1 ) );
	}

	public function test_not_on_the_matter() {
		$this->assertNull( Firm_Bridge_Handover::matter( $this->matter(), 99, 1 ) );
	}

	public function test_attorneys_list() {
		$this->assertSame( array( 3, 1 ), Firm_Bridge_Handover::attorneys( array( 2, 3 ), 2, 1 ) );
		$this->assertSame( array( 1 ), Firm_Bridge_Handover::attorneys( array( 2, 1 ), 2, 1 ) );
		$this->assertSame( array( 3 ), Firm_Bridge_Handover::attorneys( array( 2, 3 ), 2, null ) );
		$this->assertNull( Firm_Bridge_Handover::attorneys( array( 3 ), 2, 1 ) );
	}
}
