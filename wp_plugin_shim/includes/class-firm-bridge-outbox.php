<?php
/**
 * The outbox: every change for the bridge is a row first, then a signed request.
 *
 * A row is written in the same PHP request as the change, before any network call, so a bridge
 * that is down, slow or unreachable loses nothing. Rows are delivered in order (see
 * Firm_Bridge_Order) by one sender at a time (a MariaDB named lock), each with a request id fixed
 * when the row is written, so a retry after a lost answer is recognised by the bridge (409) and
 * counted as delivered. Answers 5xx, 429 and no answer at all are retried with doubling delays
 * through WP-Cron; other 4xx are permanent and shown on the Outbox screen.
 *
 * @package Firm_Bridge
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * Outbox storage and delivery.
 */
final class Firm_Bridge_Outbox {

	const DELIVER_HOOK = 'firm_bridge_deliver';
	const TICK_HOOK    = 'firm_bridge_tick';
	const SCHEDULE     = 'firm_bridge_five_minutes';
	const DOWN_UNTIL   = 'firm_bridge_down_until';
	const KEEP_DAYS    = 30;

	/**
	 * Whether this process is delivering (the named lock is per connection, and reentrant).
	 *
	 * @var bool
	 */
	private static $delivering = false;

	/** @return string */
	public static function table() {
		global $wpdb;
		return $wpdb->prefix . 'firm_bridge_outbox';
	}

	/**
	 * Creates or upgrades the table.
	 */
	public static function install() {
		global $wpdb;
		require_once ABSPATH . 'wp-admin/includes/upgrade.php';
		$table   = self::table();
		$charset = $wpdb->get_charset_collate();
		dbDelta(
			"CREATE TABLE {$table} (
			id bigint(20) unsigned NOT NULL AUTO_INCREMENT,
			object_type varchar(20) NOT NULL,
			object_id bigint(20) unsigned NOT NULL,
			method varchar(8) NOT NULL,
			path varchar(255) NOT NULL,
			body longtext NOT NULL,
			deps text NOT NULL,
			summary varchar(255) NOT NULL DEFAULT '',
			request_id varchar(128) NOT NULL,
			status varchar(16) NOT NULL DEFAULT 'pending',
			attempts int(10) unsigned NOT NULL DEFAULT 0,
			next_attempt_at bigint(20) NOT NULL DEFAULT 0,
			last_status smallint(5) unsigned DEFAULT NULL,
			last_error text,
			created_at bigint(20) NOT NULL,
			delivered_at bigint(20) DEFAULT NULL,
			PRIMARY KEY  (id),
			UNIQUE KEY request_id (request_id),
			KEY status_id (status,id),
			KEY object (object_type,object_id,id)
			) {$charset};"
		);
	}

	/**
	 * Cron wiring.
	 */
	public static function hooks() {
		add_filter( 'cron_schedules', array( __CLASS__, 'cron_schedules' ) );
		add_action( self::DELIVER_HOOK, array( __CLASS__, 'cron_deliver' ) );
		add_action( self::TICK_HOOK, array( __CLASS__, 'tick' ) );
		add_action( 'init', array( __CLASS__, 'schedule_tick' ) );
	}

	/**
	 * @param array $schedules WordPress cron schedules.
	 * @return array
	 */
	public static function cron_schedules( $schedules ) {
		$schedules[ self::SCHEDULE ] = array(
			'interval' => 300,
			'display'  => __( 'Every five minutes (Firm Bridge outbox)', 'firm-bridge' ),
		);
		return $schedules;
	}

	/**
	 * The safety net: every five minutes, whatever else happened.
	 */
	public static function schedule_tick() {
		if ( ! wp_next_scheduled( self::TICK_HOOK ) ) {
			wp_schedule_event( time() + 300, self::SCHEDULE, self::TICK_HOOK );
		}
	}

	/**
	 * The five-minute pass: deliver, then forget old delivered rows.
	 */
	public static function tick() {
		self::deliver( 25 );
		global $wpdb;
		$table = self::table();
		$wpdb->query(
			$wpdb->prepare(
				"DELETE FROM {$table} WHERE status IN (%s, %s) AND created_at < %d",
				'delivered',
				'superseded',
				time() - self::KEEP_DAYS * DAY_IN_SECONDS
			)
		);
		Firm_Bridge_Login_Check::prune();
	}

	/**
	 * A scheduled retry.
	 */
	public static function cron_deliver() {
		self::deliver( 25 );
	}

	/**
	 * Writes a row. The body is frozen now: a retry sends exactly these bytes with the same id.
	 *
	 * @param string      $type    person, matter or policy.
	 * @param int         $id      WordPress id (0 for the policy).
	 * @param string      $method  HTTP method.
	 * @param string      $path    API path.
	 * @param array|null  $body    JSON body, or null for none.
	 * @param int[]       $deps    People this row refers to.
	 * @param string      $summary One line for the Outbox screen.
	 * @param string|null $raw     Pre-encoded body (used instead of $body).
	 * @return int Row id.
	 */
	public static function enqueue( $type, $id, $method, $path, $body, array $deps, $summary, $raw = null ) {
		global $wpdb;
		if ( null === $raw ) {
			$raw = null === $body ? '' : (string) wp_json_encode( $body, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE );
		}
		$wpdb->insert(
			self::table(),
			array(
				'object_type'     => $type,
				'object_id'       => (int) $id,
				'method'          => $method,
				'path'            => $path,
				'body'            => $raw,
				'deps'            => implode( ',', array_map( 'intval', $deps ) ),
				'summary'         => Firm_Bridge_Mapper::text( $summary ),
				'request_id'      => Firm_Bridge_Client::request_id(),
				'status'          => 'pending',
				'attempts'        => 0,
				'next_attempt_at' => 0,
				'created_at'      => time(),
			),
			array( '%s', '%d', '%s', '%s', '%s', '%s', '%s', '%s', '%s', '%d', '%d', '%d' )
		);
		return (int) $wpdb->insert_id;
	}

	/**
	 * Sends what may go now, in order, for at most $budget seconds.
	 *
	 * @param float $budget Seconds to spend at most (the one request under way may run over).
	 * @param bool  $force  Send every pending row now, in order, whatever its retry time and the
	 *                      "bridge is down" pause (the Deliver now button).
	 * @return array array{sent:int, delivered:int, failed:int, retry:int, pending:int, busy:bool,
	 *               unreachable:?string} (unreachable: why the run stopped, when the bridge did
	 *               not answer or asked to slow down).
	 */
	public static function deliver( $budget = 10, $force = false ) {
		global $wpdb;
		$stats = array(
			'sent'        => 0,
			'delivered'   => 0,
			'failed'      => 0,
			'retry'       => 0,
			'pending'     => 0,
			'busy'        => false,
			'unreachable' => null,
		);
		if ( self::$delivering || ! Firm_Bridge_Settings::configured() ) {
			$stats['busy'] = self::$delivering;
			return $stats;
		}
		if ( ! $force && (int) get_option( self::DOWN_UNTIL, 0 ) > time() ) {
			// The bridge did not answer a moment ago; try again when the pause ends.
			$stats['pending'] = self::count( 'pending' );
			self::schedule_next();
			return $stats;
		}
		$lock = $wpdb->prefix . 'firm_bridge_outbox';
		if ( '1' !== (string) $wpdb->get_var( $wpdb->prepare( 'SELECT GET_LOCK(%s, %d)', $lock, 0 ) ) ) {
			// Another request is delivering; it sends these rows too, in order.
			$stats['busy'] = true;
			return $stats;
		}
		self::$delivering = true;
		try {
			self::run( microtime( true ) + $budget, $stats, $force );
		} finally {
			self::$delivering = false;
			$wpdb->query( $wpdb->prepare( 'SELECT RELEASE_LOCK(%s)', $lock ) );
		}
		$stats['pending'] = self::count( 'pending' );
		self::schedule_next();
		return $stats;
	}

	/**
	 * The delivery loop (under the lock).
	 *
	 * @param float $deadline microtime() to stop at.
	 * @param array $stats    Counters, updated.
	 * @param bool  $force    Send rows whose retry time has not come.
	 */
	private static function run( $deadline, array &$stats, $force ) {
		global $wpdb;
		$table   = self::table();
		$order   = new Firm_Bridge_Order( $force );
		$last_id = 0;
		while ( microtime( true ) < $deadline ) {
			$rows = $wpdb->get_results(
				$wpdb->prepare(
					"SELECT * FROM {$table} WHERE status = %s AND id > %d ORDER BY id ASC LIMIT %d",
					'pending',
					$last_id,
					100
				),
				ARRAY_A
			);
			if ( ! $rows ) {
				return;
			}
			foreach ( $rows as $row ) {
				$last_id = (int) $row['id'];
				if ( ! $order->may_send( $row, time() ) ) {
					continue;
				}
				$result  = Firm_Bridge_Client::send( $row['method'], $row['path'], $row['body'], $row['request_id'] );
				$outcome = Firm_Bridge_Order::classify( $result['status'], $row['method'], $row['path'] );
				++$stats['sent'];
				self::record( $row, $result, $outcome );
				if ( Firm_Bridge_Order::DELIVERED === $outcome ) {
					++$stats['delivered'];
					self::delivered( $row, $result );
				} elseif ( Firm_Bridge_Order::FAILED === $outcome ) {
					++$stats['failed'];
				} else {
					++$stats['retry'];
					$order->hold( $row );
				}
				if ( Firm_Bridge_Order::STOP === $outcome ) {
					$stats['unreachable'] = (string) $result['error'];
					return;
				}
				if ( microtime( true ) >= $deadline ) {
					return;
				}
			}
		}
	}

	/**
	 * Stores one attempt's outcome on its row.
	 *
	 * @param array  $row     The row.
	 * @param array  $result  Firm_Bridge_Client::send() result.
	 * @param string $outcome Firm_Bridge_Order constant.
	 */
	private static function record( array $row, array $result, $outcome ) {
		global $wpdb;
		$attempts = (int) $row['attempts'] + 1;
		$fields   = array(
			'attempts'    => $attempts,
			'last_status' => $result['status'],
			'last_error'  => $result['error'],
		);
		if ( Firm_Bridge_Order::DELIVERED === $outcome ) {
			$fields['status']       = 'delivered';
			$fields['delivered_at'] = time();
			if ( 409 === $result['status'] ) {
				$fields['last_error'] = 'already applied by an earlier attempt (409)';
			}
		} elseif ( Firm_Bridge_Order::FAILED === $outcome ) {
			$fields['status'] = 'failed';
		} else {
			$delay                     = Firm_Bridge_Order::backoff( $attempts, Firm_Bridge_Settings::retry_base(), Firm_Bridge_Settings::retry_max() );
			$fields['next_attempt_at'] = time() + $delay;
			if ( Firm_Bridge_Order::STOP === $outcome ) {
				update_option( self::DOWN_UNTIL, time() + $delay, true );
			}
		}
		if ( Firm_Bridge_Order::STOP !== $outcome && (int) get_option( self::DOWN_UNTIL, 0 ) > 0 ) {
			update_option( self::DOWN_UNTIL, 0, true );
		}
		$wpdb->update( self::table(), $fields, array( 'id' => (int) $row['id'] ) );
		if ( null !== $result['error'] && Firm_Bridge_Order::DELIVERED !== $outcome ) {
			// Ids and outcomes only: bodies hold names and e-mail addresses.
			error_log( sprintf( 'firm-bridge: outbox row %d (%s %s) %s: %s', (int) $row['id'], $row['object_type'], (int) $row['object_id'], $outcome, $result['error'] ) ); // phpcs:ignore WordPress.PHP.DevelopmentFunctions
		}
	}

	/**
	 * Remembers what the bridge said about a delivered person (their Matrix id).
	 *
	 * @param array $row    The row.
	 * @param array $result The answer.
	 */
	private static function delivered( array $row, array $result ) {
		if ( 'person' === $row['object_type'] && is_array( $result['json'] ) && isset( $result['json']['user_id'] ) ) {
			if ( get_userdata( (int) $row['object_id'] ) ) {
				update_user_meta( (int) $row['object_id'], Firm_Bridge_People::META_MXID, sanitize_text_field( (string) $result['json']['user_id'] ) );
			}
		}
	}

	/**
	 * Schedules the next run at the earliest moment a pending row may go.
	 */
	public static function schedule_next() {
		global $wpdb;
		$table = self::table();
		$next  = $wpdb->get_var(
			$wpdb->prepare( "SELECT MIN(next_attempt_at) FROM {$table} WHERE status = %s", 'pending' )
		);
		if ( null === $next ) {
			return;
		}
		$when = max( time(), (int) $next, (int) get_option( self::DOWN_UNTIL, 0 ) );
		// A run already due by then picks these rows up too.
		foreach ( (array) _get_cron_array() as $ts => $hooks ) {
			if ( (int) $ts > $when ) {
				break;
			}
			if ( isset( $hooks[ self::DELIVER_HOOK ] ) ) {
				return;
			}
		}
		// The args make the event distinct for WordPress's 10-minute duplicate check.
		if ( ! wp_next_scheduled( self::DELIVER_HOOK, array( $when ) ) ) {
			wp_schedule_single_event( $when, self::DELIVER_HOOK, array( $when ) );
		}
	}

	/**
	 * @param string $status Row status.
	 * @return int
	 */
	public static function count( $status ) {
		global $wpdb;
		$table = self::table();
		return (int) $wpdb->get_var( $wpdb->prepare( "SELECT COUNT(*) FROM {$table} WHERE status = %s", $status ) );
	}

	/**
	 * Rows for the Outbox screen and the admin REST route, newest first.
	 *
	 * @param string|null $status Only this status.
	 * @param int         $limit  At most this many.
	 * @param int         $after  Only ids above this.
	 * @return array[]
	 */
	public static function rows( $status = null, $limit = 200, $after = 0 ) {
		global $wpdb;
		$table = self::table();
		if ( null === $status ) {
			return $wpdb->get_results(
				$wpdb->prepare( "SELECT * FROM {$table} WHERE id > %d ORDER BY id DESC LIMIT %d", $after, $limit ),
				ARRAY_A
			);
		}
		return $wpdb->get_results(
			$wpdb->prepare( "SELECT * FROM {$table} WHERE status = %s AND id > %d ORDER BY id DESC LIMIT %d", $status, $after, $limit ),
			ARRAY_A
		);
	}

	/**
	 * One page of rows for the Outbox screen.
	 *
	 * @param string|null $status  Only this status.
	 * @param string      $orderby id, status, attempts or created_at.
	 * @param string      $order   ASC or DESC.
	 * @param int         $limit   Rows per page.
	 * @param int         $offset  Rows before this page.
	 * @return array[]
	 */
	public static function page( $status, $orderby, $order, $limit, $offset ) {
		global $wpdb;
		$table   = self::table();
		$columns = array(
			'id'         => 'id',
			'status'     => 'status',
			'attempts'   => 'attempts',
			'created_at' => 'created_at',
		);
		// Column and direction come from these fixed lists, never from the request as such.
		$by  = $columns[ $orderby ] ?? 'id';
		$dir = 'ASC' === strtoupper( (string) $order ) ? 'ASC' : 'DESC';
		if ( null === $status ) {
			return $wpdb->get_results(
				$wpdb->prepare( "SELECT * FROM {$table} ORDER BY {$by} {$dir}, id {$dir} LIMIT %d OFFSET %d", $limit, $offset ), // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
				ARRAY_A
			);
		}
		return $wpdb->get_results(
			$wpdb->prepare( "SELECT * FROM {$table} WHERE status = %s ORDER BY {$by} {$dir}, id {$dir} LIMIT %d OFFSET %d", $status, $limit, $offset ), // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
			ARRAY_A
		);
	}

	/**
	 * The body sent for the same object before this row (the row it changes from).
	 *
	 * @param array $row Outbox row.
	 * @return array|null
	 */
	public static function previous_body( array $row ) {
		global $wpdb;
		$table = self::table();
		$body  = $wpdb->get_var(
			$wpdb->prepare(
				"SELECT body FROM {$table} WHERE object_type = %s AND object_id = %d AND method = %s AND id < %d ORDER BY id DESC LIMIT %d",
				$row['object_type'],
				(int) $row['object_id'],
				'PUT',
				(int) $row['id'],
				1
			)
		);
		$data = is_string( $body ) ? json_decode( $body, true ) : null;
		return is_array( $data ) ? $data : null;
	}

	/**
	 * The first later row of the same object that was delivered: it carries the object's whole
	 * state, so this row's failure or replacement no longer matters.
	 *
	 * @param array $row Outbox row.
	 * @return int|null Its id.
	 */
	public static function delivered_after( array $row ) {
		global $wpdb;
		$table = self::table();
		$id    = $wpdb->get_var(
			$wpdb->prepare(
				"SELECT id FROM {$table} WHERE object_type = %s AND object_id = %d AND id > %d AND status = %s ORDER BY id ASC LIMIT %d",
				$row['object_type'],
				(int) $row['object_id'],
				(int) $row['id'],
				'delivered',
				1
			)
		);
		return null === $id ? null : (int) $id;
	}

	/**
	 * @param int $id Row id.
	 * @return array|null
	 */
	public static function row( $id ) {
		global $wpdb;
		$table = self::table();
		$row   = $wpdb->get_row( $wpdb->prepare( "SELECT * FROM {$table} WHERE id = %d", $id ), ARRAY_A );
		return $row ? $row : null;
	}

	/**
	 * The latest row for an object.
	 *
	 * @param string $type Object type.
	 * @param int    $id   Object id.
	 * @return array|null
	 */
	public static function latest( $type, $id ) {
		global $wpdb;
		$table = self::table();
		$row   = $wpdb->get_row(
			$wpdb->prepare( "SELECT * FROM {$table} WHERE object_type = %s AND object_id = %d ORDER BY id DESC LIMIT %d", $type, $id, 1 ),
			ARRAY_A
		);
		return $row ? $row : null;
	}

	/**
	 * A failed row is replaced by a fresh copy of its object's current state; resending the old
	 * body could overwrite newer changes that went out after it.
	 *
	 * @param int $id Row id.
	 * @return int|null The new row id.
	 */
	public static function resend( $id ) {
		global $wpdb;
		$row = self::row( $id );
		if ( ! $row || 'failed' !== $row['status'] ) {
			return null;
		}
		$new = Firm_Bridge_Sync::enqueue_object( $row['object_type'], (int) $row['object_id'], true );
		$wpdb->update( self::table(), array( 'status' => 'superseded' ), array( 'id' => (int) $row['id'] ) );
		return $new;
	}
}
