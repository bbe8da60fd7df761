<?php
/**
 * The Outbox screen's list: WordPress's own list table, with status filters and their counts,
 * paging and sorting, what each row changes, and rows a later delivery made moot marked so.
 *
 * @package Firm_Bridge
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

if ( ! class_exists( 'WP_List_Table' ) ) {
	require_once ABSPATH . 'wp-admin/includes/class-wp-list-table.php';
}

/**
 * Outbox rows as a WP_List_Table.
 */
final class Firm_Bridge_Outbox_Table extends WP_List_Table {

	const PER_PAGE = 20;
	const STATUSES = array( 'pending', 'failed', 'delivered', 'superseded' );

	/** @var string|null The status shown, or null for all. */
	private $status = null;

	/** @var int[] Failed rows shown, whose resend forms follow the table. */
	private $resend = array();

	/**
	 * Set up.
	 */
	public function __construct() {
		parent::__construct(
			array(
				'singular' => 'firm_bridge_request',
				'plural'   => 'firm_bridge_requests',
				'ajax'     => false,
				'screen'   => 'toplevel_page_' . Firm_Bridge_Admin::SLUG,
			)
		);
	}

	/** @return array<string,string> Status => its name on the screen. */
	public static function status_labels() {
		return array(
			'pending'    => __( 'Pending', 'firm-bridge' ),
			'failed'     => __( 'Failed', 'firm-bridge' ),
			'delivered'  => __( 'Delivered', 'firm-bridge' ),
			'superseded' => __( 'Superseded', 'firm-bridge' ),
		);
	}

	/** @return array<string,string> */
	public function get_columns() {
		return array(
			'id'              => __( 'Request', 'firm-bridge' ),
			'summary'         => __( 'Object', 'firm-bridge' ),
			'changes'         => __( 'What changed', 'firm-bridge' ),
			'status'          => __( 'Status', 'firm-bridge' ),
			'attempts'        => __( 'Attempts', 'firm-bridge' ),
			'next_attempt_at' => __( 'Next attempt', 'firm-bridge' ),
			'last_error'      => __( 'Last answer', 'firm-bridge' ),
			'created_at'      => __( 'Queued', 'firm-bridge' ),
		);
	}

	/** @return array<string,array> */
	protected function get_sortable_columns() {
		return array(
			'id'         => array( 'id', true ),
			'status'     => array( 'status', false ),
			'attempts'   => array( 'attempts', false ),
			'created_at' => array( 'created_at', true ),
		);
	}

	/** @return string */
	protected function get_primary_column_name() {
		return 'summary';
	}

	/**
	 * Reads the page of rows the request asks for.
	 */
	public function prepare_items() {
		// phpcs:disable WordPress.Security.NonceVerification -- read-only filters and sorting.
		$status       = isset( $_GET['status'] ) ? sanitize_key( $_GET['status'] ) : '';
		$this->status = in_array( $status, self::STATUSES, true ) ? $status : null;
		$orderby      = isset( $_GET['orderby'] ) ? sanitize_key( $_GET['orderby'] ) : 'id';
		$order        = isset( $_GET['order'] ) && 'asc' === strtolower( sanitize_key( $_GET['order'] ) ) ? 'ASC' : 'DESC';
		// phpcs:enable
		$total = null === $this->status ? array_sum( array_map( array( 'Firm_Bridge_Outbox', 'count' ), self::STATUSES ) ) : Firm_Bridge_Outbox::count( $this->status );
		$page  = $this->get_pagenum();
		$this->items = Firm_Bridge_Outbox::page( $this->status, $orderby, $order, self::PER_PAGE, ( $page - 1 ) * self::PER_PAGE );
		$this->set_pagination_args(
			array(
				'total_items' => $total,
				'per_page'    => self::PER_PAGE,
			)
		);
		$this->_column_headers = array( $this->get_columns(), array(), $this->get_sortable_columns(), $this->get_primary_column_name() );
	}

	/** @return array<string,string> Status filters, with counts. */
	protected function get_views() {
		$base  = add_query_arg( array( 'page' => Firm_Bridge_Admin::SLUG ), admin_url( 'admin.php' ) );
		$all   = array_sum( array_map( array( 'Firm_Bridge_Outbox', 'count' ), self::STATUSES ) );
		$views = array(
			'all' => sprintf( '<a href="%s"%s>%s <span class="count">(%d)</span></a>', esc_url( $base ), null === $this->status ? ' class="current" aria-current="page"' : '', esc_html__( 'All', 'firm-bridge' ), (int) $all ),
		);
		foreach ( self::status_labels() as $key => $label ) {
			$views[ $key ] = sprintf(
				'<a href="%s"%s>%s <span class="count">(%d)</span></a>',
				esc_url( add_query_arg( 'status', $key, $base ) ),
				$key === $this->status ? ' class="current" aria-current="page"' : '',
				esc_html( $label ),
				(int) Firm_Bridge_Outbox::count( $key )
			);
		}
		return $views;
	}

	/** Nothing here. */
	public function no_items() {
		esc_html_e( 'No requests here.', 'firm-bridge' );
	}

	/**
	 * @param array  $item   Row.
	 * @param string $column Column.
	 * @return string
	 */
	protected function column_default( $item, $column ) {
		switch ( $column ) {
			case 'id':
				return '#' . (int) $item['id'];
			case 'attempts':
				return (string) (int) $item['attempts'];
			case 'next_attempt_at':
				return 'pending' === $item['status'] ? esc_html( self::when( (int) $item['next_attempt_at'] ) ) : '—';
			case 'last_error':
				return esc_html( (string) $item['last_error'] );
			case 'created_at':
				return esc_html( self::when( (int) $item['created_at'] ) );
		}
		return '';
	}

	/**
	 * @param array $item Row.
	 * @return string
	 */
	protected function column_summary( $item ) {
		$out = esc_html( $item['summary'] ) . '<br /><code>' . esc_html( $item['method'] . ' ' . $item['path'] ) . '</code>';
		if ( 'failed' === $item['status'] ) {
			// The form itself is printed after the table (forms do not nest); the button names it.
			$this->resend[] = (int) $item['id'];
			$out           .= sprintf( '<div class="firm-bridge-row-actions"><button type="submit" class="button button-small" form="firm-bridge-resend-%d">%s</button></div>', (int) $item['id'], esc_html__( 'Send current state again', 'firm-bridge' ) );
		}
		return $out;
	}

	/**
	 * The forms of the "Send current state again" buttons shown, outside the table's own form.
	 */
	public function resend_forms() {
		foreach ( $this->resend as $id ) {
			echo '<form method="post" action="' . esc_url( admin_url( 'admin-post.php' ) ) . '" id="firm-bridge-resend-' . (int) $id . '" hidden>';
			echo '<input type="hidden" name="action" value="firm_bridge_resend" /><input type="hidden" name="row" value="' . (int) $id . '" />';
			wp_nonce_field( 'firm_bridge_resend_' . $id );
			echo '</form>';
		}
	}

	/**
	 * @param array $item Row.
	 * @return string
	 */
	protected function column_changes( $item ) {
		$body    = '' === $item['body'] ? null : json_decode( $item['body'], true );
		$changes = Firm_Bridge_Changes::describe( $item['object_type'], $item['method'], $item['path'], $body, 'PUT' === $item['method'] ? Firm_Bridge_Outbox::previous_body( $item ) : null );
		return esc_html( implode( ', ', $changes ) );
	}

	/**
	 * The status, and whether a later delivery of the object made this row moot.
	 *
	 * @param array $item Row.
	 * @return string
	 */
	protected function column_status( $item ) {
		$labels = self::status_labels();
		$out    = '<span class="firm-bridge-status firm-bridge-status--' . esc_attr( $item['status'] ) . '">' . esc_html( $labels[ $item['status'] ] ?? $item['status'] ) . '</span>';
		if ( in_array( $item['status'], array( 'failed', 'superseded', 'delivered' ), true ) ) {
			$later = Firm_Bridge_Outbox::delivered_after( $item );
			if ( null !== $later ) {
				/* translators: %d: the later request's number */
				$out .= '<br /><span class="firm-bridge-superseded">' . esc_html( sprintf( __( 'superseded by #%d, delivered', 'firm-bridge' ), $later ) ) . '</span>';
			}
		}
		return $out;
	}

	/**
	 * @param int $ts Unix time.
	 * @return string
	 */
	private static function when( $ts ) {
		return $ts ? wp_date( 'Y-m-d H:i:s', $ts ) : '—';
	}
}
