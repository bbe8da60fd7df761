<?php
/**
 * @package Firm_Bridge
 */

use PHPUnit\Framework\TestCase;

/**
 * Outbox ordering and answer classification.
 */
final class OrderTest extends TestCase {

	/**
	 * @param int    $id   Row id.
	 * @param string $type Object type.
	 * @param int    $oid  Object id.
	 * @param array  $deps People referenced.
	 * @param int    $next Next attempt time.
	 * @return array
	 */
	private function row( $id, $type, $oid, $deps = array(), $next = 0 ) {
		return array(
			'id'              => $id,
			'object_type'     => $type,
			'object_id'       => $oid,
			'deps'            => implode( ',', $deps ),
			'next_attempt_at' => $next,
		);
	}

	/**
	 * Simulates one delivery run: rows in id order, `$answers` maps row id => outcome.
	 *
	 * @param array $rows    Pending rows.
	 * @param array $answers Outcome per row id (default delivered).
	 * @param int   $now     Clock.
	 * @param bool  $ignore_backoff As Deliver now runs.
	 * @return int[] Row ids sent, in order.
	 */
	private function run_once( array $rows, array $answers, $now = 100, $ignore_backoff = false ) {
		$order = new Firm_Bridge_Order( $ignore_backoff );
		$sent  = array();
		foreach ( $rows as $row ) {
			if ( ! $order->may_send( $row, $now ) ) {
				continue;
			}
			$sent[]  = $row['id'];
			$outcome = $answers[ $row['id'] ] ?? Firm_Bridge_Order::DELIVERED;
			if ( in_array( $outcome, array( Firm_Bridge_Order::RETRY, Firm_Bridge_Order::STOP ), true ) ) {
				$order->hold( $row );
			}
			if ( Firm_Bridge_Order::STOP === $outcome ) {
				break;
			}
		}
		return $sent;
	}

	public function test_everything_goes_in_id_order_when_the_bridge_answers() {
		$rows = array( $this->row( 1, 'person', 5 ), $this->row( 2, 'matter', 9, array( 5 ) ), $this->row( 3, 'person', 5 ), $this->row( 4, 'matter', 9, array( 5 ) ) );
		$this->assertSame( array( 1, 2, 3, 4 ), $this->run_once( $rows, array() ) );
	}

	public function test_a_retried_row_holds_back_its_object_and_dependents_only() {
		$rows = array(
			$this->row( 1, 'person', 5 ),
			$this->row( 2, 'person', 6 ),
			$this->row( 3, 'matter', 9, array( 5, 7 ) ),
			$this->row( 4, 'person', 5 ),
			$this->row( 5, 'matter', 10, array( 6 ) ),
			$this->row( 6, 'policy', 0 ),
			$this->row( 7, 'person', 8, array( 5 ) ),
			$this->row( 8, 'matter', 11, array( 8 ) ),
		);
		// Person 5's row must be retried: matter 9 (names 5), person 5's later row, person 8
		// (supervised by 5) and matter 11 (names 8) wait; the rest goes.
		$this->assertSame( array( 1, 2, 5, 6 ), $this->run_once( $rows, array( 1 => Firm_Bridge_Order::RETRY ) ) );
	}

	public function test_a_row_waiting_for_its_backoff_holds_back_later_rows_of_its_object() {
		$rows = array( $this->row( 1, 'matter', 9, array(), 500 ), $this->row( 2, 'matter', 9 ), $this->row( 3, 'matter', 10 ) );
		$this->assertSame( array( 3 ), $this->run_once( $rows, array(), 100 ) );
		$this->assertSame( array( 1, 2, 3 ), $this->run_once( $rows, array(), 500 ) );
	}

	public function test_deliver_now_sends_rows_in_backoff_in_order() {
		$rows = array( $this->row( 1, 'person', 5, array(), 500 ), $this->row( 2, 'matter', 9, array( 5 ) ), $this->row( 3, 'person', 5 ) );
		$this->assertSame( array( 1, 2, 3 ), $this->run_once( $rows, array(), 100, true ) );
		// Still in order: a row that must be retried again holds back what depends on it.
		$this->assertSame( array( 1 ), $this->run_once( $rows, array( 1 => Firm_Bridge_Order::RETRY ), 100, true ) );
	}

	public function test_no_answer_stops_the_run() {
		$rows = array( $this->row( 1, 'person', 5 ), $this->row( 2, 'person', 6 ), $this->row( 3, 'person', 7 ) );
		$this->assertSame( array( 1, 2 ), $this->run_once( $rows, array( 2 => Firm_Bridge_Order::STOP ) ) );
	}

	public function test_a_permanent_failure_does_not_block_the_object() {
		$rows = array( $this->row( 1, 'person', 5 ), $this->row( 2, 'person', 5 ) );
		$this->assertSame( array( 1, 2 ), $this->run_once( $rows, array( 1 => Firm_Bridge_Order::FAILED ) ) );
	}

	public function test_deps_parse_from_the_stored_column() {
		$this->assertSame( array(), Firm_Bridge_Order::deps( array( 'deps' => '' ) ) );
		$this->assertSame( array( 3, 4 ), Firm_Bridge_Order::deps( array( 'deps' => '3,4' ) ) );
		$this->assertSame( array( 3 ), Firm_Bridge_Order::deps( array( 'deps' => array( '3' ) ) ) );
	}

	public function test_classification() {
		$c = array( 'Firm_Bridge_Order', 'classify' );
		$this->assertSame( 'delivered', $c( 200, 'PUT', '/_firm/v1/people/1' ) );
		$this->assertSame( 'delivered', $c( 409, 'PUT', '/_firm/v1/people/1' ) );
		$this->assertSame( 'delivered', $c( 404, 'POST', '/_firm/v1/people/1/deactivate' ) );
		$this->assertSame( 'failed', $c( 404, 'PUT', '/_firm/v1/matters/1' ) );
		$this->assertSame( 'failed', $c( 400, 'PUT', '/_firm/v1/matters/1' ) );
		$this->assertSame( 'failed', $c( 401, 'PUT', '/_firm/v1/matters/1' ) );
		$this->assertSame( 'failed', $c( 413, 'PUT', '/_firm/v1/matters/1' ) );
		$this->assertSame( 'stop', $c( 429, 'PUT', '/_firm/v1/matters/1' ) );
		$this->assertSame( 'stop', $c( null, 'PUT', '/_firm/v1/matters/1' ) );
		$this->assertSame( 'retry', $c( 500, 'PUT', '/_firm/v1/matters/1' ) );
		$this->assertSame( 'retry', $c( 503, 'PUT', '/_firm/v1/matters/1' ) );
		$this->assertSame( 'retry', $c( 302, 'PUT', '/_firm/v1/matters/1' ) );
	}

	public function test_backoff_doubles_up_to_the_cap() {
		$this->assertSame( array( 15, 30, 60, 120, 240, 480, 960, 1920, 3600, 3600 ), array_map( static fn( $n ) => Firm_Bridge_Order::backoff( $n, 15, 3600 ), range( 1, 10 ) ) );
		$this->assertSame( 3600, Firm_Bridge_Order::backoff( 500, 15, 3600 ) );
		$this->assertSame( 1, Firm_Bridge_Order::backoff( 0, 0, 0 ) );
	}
}
