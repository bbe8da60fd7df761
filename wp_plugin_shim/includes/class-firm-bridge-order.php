<?php
/**
 * The outbox's delivery rules, pure so they can be tested without WordPress.
 *
 * Rows go out in id order. A row waits while an earlier pending row of the same object (person N,
 * matter M, the policy) has not gone out, and while an earlier pending row of a person it refers
 * to has not: a matter must never overtake the person it names, or the bridge would refuse it.
 * Objects that do not depend on a stuck one keep flowing.
 *
 * @package Firm_Bridge
 */

if ( ! defined( 'ABSPATH' ) && ! defined( 'FIRM_BRIDGE_UNIT_TESTS' ) ) {
	exit;
}

/**
 * One delivery run's ordering state, and how answers are classified.
 */
final class Firm_Bridge_Order {

	const DELIVERED = 'delivered';
	const RETRY     = 'retry';
	const FAILED    = 'failed';
	/** Retry this row, and send nothing more in this run (bridge unreachable or rate limiting). */
	const STOP = 'stop';

	/**
	 * Objects ("person:12") that something earlier in this run is holding back.
	 *
	 * @var array<string,bool>
	 */
	private $held = array();

	/**
	 * Whether rows go now whatever their retry time (the Deliver now button).
	 *
	 * @var bool
	 */
	private $ignore_backoff;

	/**
	 * @param bool $ignore_backoff Send rows whose retry time has not come (still in order).
	 */
	public function __construct( $ignore_backoff = false ) {
		$this->ignore_backoff = (bool) $ignore_backoff;
	}

	/**
	 * @param array $row array{object_type:string, object_id:int, deps:int[]|string,
	 *                   next_attempt_at:int}.
	 * @return string
	 */
	public static function key( array $row ) {
		return $row['object_type'] . ':' . (int) $row['object_id'];
	}

	/**
	 * Person ids a row depends on.
	 *
	 * @param array $row Outbox row.
	 * @return int[]
	 */
	public static function deps( array $row ) {
		$deps = $row['deps'] ?? array();
		if ( is_string( $deps ) ) {
			$deps = '' === $deps ? array() : explode( ',', $deps );
		}
		return array_map( 'intval', (array) $deps );
	}

	/**
	 * Whether this pending row may be sent now. Rows are offered in id order; a row that may not
	 * go holds back its own object for the rest of the run.
	 *
	 * @param array $row Outbox row.
	 * @param int   $now Unix time.
	 * @return bool
	 */
	public function may_send( array $row, $now ) {
		$key     = self::key( $row );
		$blocked = isset( $this->held[ $key ] ) || ( ! $this->ignore_backoff && (int) $row['next_attempt_at'] > (int) $now );
		foreach ( self::deps( $row ) as $dep ) {
			if ( isset( $this->held[ 'person:' . $dep ] ) ) {
				$blocked = true;
			}
		}
		if ( $blocked ) {
			$this->held[ $key ] = true;
		}
		return ! $blocked;
	}

	/**
	 * A sent row that must be retried holds back its object (and its dependents).
	 *
	 * @param array $row Outbox row.
	 */
	public function hold( array $row ) {
		$this->held[ self::key( $row ) ] = true;
	}

	/**
	 * What an answer means for a row.
	 *
	 * @param int|null $status HTTP status, or null when no answer came (refused, timed out).
	 * @param string   $method The row's HTTP method.
	 * @param string   $path   The row's path.
	 * @return string One of the constants.
	 */
	public static function classify( $status, $method, $path ) {
		if ( null === $status ) {
			return self::STOP;
		}
		$status = (int) $status;
		if ( $status >= 200 && $status < 300 ) {
			return self::DELIVERED;
		}
		if ( 409 === $status ) {
			// The request id was already applied: an earlier attempt arrived but its answer was lost.
			return self::DELIVERED;
		}
		if ( 404 === $status && 'POST' === $method && '/deactivate' === substr( $path, -11 ) ) {
			// The bridge never knew the person: there is nothing to deactivate.
			return self::DELIVERED;
		}
		if ( 429 === $status ) {
			return self::STOP;
		}
		if ( $status >= 400 && $status < 500 ) {
			return self::FAILED;
		}
		return self::RETRY;
	}

	/**
	 * Seconds to wait before attempt number $attempts + 1: doubling from $base up to $max.
	 *
	 * @param int $attempts Attempts made so far (at least 1).
	 * @param int $base     First delay in seconds.
	 * @param int $max      Largest delay in seconds.
	 * @return int
	 */
	public static function backoff( $attempts, $base, $max ) {
		$attempts = max( 1, (int) $attempts );
		$base     = max( 1, (int) $base );
		$max      = max( $base, (int) $max );
		if ( $attempts > 30 ) {
			return $max;
		}
		return (int) min( $max, $base * ( 2 ** ( $attempts - 1 ) ) );
	}
}
