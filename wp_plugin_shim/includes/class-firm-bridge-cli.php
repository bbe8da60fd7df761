<?php
/**
 * WP-CLI: `wp firm-bridge resync`, `wp firm-bridge deliver`, `wp firm-bridge status`.
 *
 * @package Firm_Bridge
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * Manages the sync with the firm's chat bridge.
 */
class Firm_Bridge_CLI {

	/**
	 * Queues the full state (role table, every person, every matter) for the bridge.
	 *
	 * ## OPTIONS
	 *
	 * [--deliver]
	 * : Deliver right away instead of leaving it to WP-Cron.
	 *
	 * @param array $args       Positional arguments.
	 * @param array $assoc_args Options.
	 */
	public function resync( $args, $assoc_args ) {
		$rows = Firm_Bridge_Sync::resync();
		WP_CLI::log( sprintf( '%d requests queued.', $rows ) );
		if ( ! empty( $assoc_args['deliver'] ) ) {
			$this->deliver( array(), array() );
			return;
		}
		WP_CLI::success( 'Queued; WP-Cron delivers them.' );
	}

	/**
	 * Delivers every pending row now, in order, whatever its retry time.
	 *
	 * @param array $args       Positional arguments.
	 * @param array $assoc_args Options.
	 */
	public function deliver( $args, $assoc_args ) {
		$stats = Firm_Bridge_Outbox::deliver( 60, true );
		$line  = sprintf( '%d sent, %d delivered, %d failed, %d to retry, %d pending.', $stats['sent'], $stats['delivered'], $stats['failed'], $stats['retry'], $stats['pending'] );
		if ( $stats['failed'] > 0 ) {
			WP_CLI::warning( $line );
			return;
		}
		WP_CLI::success( $line );
	}

	/**
	 * Counts of the outbox by status.
	 *
	 * @param array $args       Positional arguments.
	 * @param array $assoc_args Options.
	 */
	public function status( $args, $assoc_args ) {
		foreach ( array( 'pending', 'failed', 'delivered', 'superseded' ) as $status ) {
			WP_CLI::log( sprintf( '%-10s %d', $status, Firm_Bridge_Outbox::count( $status ) ) );
		}
	}
}
