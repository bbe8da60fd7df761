<?php
/**
 * What an outbox row changes, in the field's words ("privileged: on", "legal hold: on", "name"),
 * from its body and the body sent before it for the same object. Pure, so it is tested without
 * WordPress.
 *
 * @package Firm_Bridge
 */

if ( ! defined( 'ABSPATH' ) && ! defined( 'FIRM_BRIDGE_UNIT_TESTS' ) ) {
	exit;
}

/**
 * Describes a row's change.
 */
final class Firm_Bridge_Changes {

	/** Matter fields whose change is named by the field alone. */
	const MATTER_FIELDS = array(
		'number'              => 'number',
		'title'               => 'title',
		'clients'             => 'clients',
		'responsible_partner' => 'responsible partner',
		'associates'          => 'associates',
		'paralegals'          => 'paralegals',
	);

	/** Person fields whose change is named by the field alone. */
	const PERSON_FIELDS = array(
		'display_name' => 'name',
		'email'        => 'e-mail address',
		'supervisor'   => 'supervising partner',
		'attorneys'    => 'assigned attorneys',
	);

	/**
	 * @param string     $type   person, matter or policy.
	 * @param string     $method HTTP method.
	 * @param string     $path   API path.
	 * @param array|null $after  This row's body.
	 * @param array|null $before The previous body sent for the object, or null for none.
	 * @return string[] What changed, in the field's words.
	 */
	public static function describe( $type, $method, $path, $after, $before ) {
		if ( 'POST' === $method && '/deactivate' === substr( $path, -11 ) ) {
			return array( 'departure: sessions end, rooms are left' );
		}
		if ( ! is_array( $after ) ) {
			return array();
		}
		if ( 'policy' === $type ) {
			return self::policy( $after['policy'] ?? array(), is_array( $before ) ? ( $before['policy'] ?? array() ) : null );
		}
		if ( ! is_array( $before ) ) {
			return array( 'person' === $type ? 'new person' : 'new matter' );
		}
		return 'person' === $type ? self::person( $after, $before ) : self::matter( $after, $before );
	}

	/**
	 * @param array $a This body.
	 * @param array $b The one before.
	 * @return string[]
	 */
	private static function matter( array $a, array $b ) {
		$out = array();
		foreach ( array(
			'privileged' => 'privileged',
			'legal_hold' => 'legal hold',
		) as $key => $label ) {
			if ( ! empty( $a[ $key ] ) !== ! empty( $b[ $key ] ) ) {
				$out[] = $label . ': ' . ( empty( $a[ $key ] ) ? 'off' : 'on' );
			}
		}
		if ( ( $a['status'] ?? 'open' ) !== ( $b['status'] ?? 'open' ) ) {
			$out[] = 'status: ' . ( $a['status'] ?? 'open' );
		}
		foreach ( self::MATTER_FIELDS as $key => $label ) {
			if ( self::norm( $a[ $key ] ?? null ) !== self::norm( $b[ $key ] ?? null ) ) {
				$out[] = $label;
			}
		}
		foreach ( array( 'retention_open_days', 'retention_closed_days', 'retention_media_days' ) as $key ) {
			if ( ( $a[ $key ] ?? null ) != ( $b[ $key ] ?? null ) ) { // phpcs:ignore Universal.Operators.StrictComparisons -- 30 and 30.0 are the same period.
				$out[] = 'retention';
				break;
			}
		}
		return $out ? $out : array( 'no change (sent again)' );
	}

	/**
	 * @param array $a This body.
	 * @param array $b The one before.
	 * @return string[]
	 */
	private static function person( array $a, array $b ) {
		$out = array();
		if ( ! empty( $a['active'] ) !== ! empty( $b['active'] ) ) {
			$out[] = empty( $a['active'] ) ? 'departed' : 'active again';
		}
		if ( ( $a['role'] ?? '' ) !== ( $b['role'] ?? '' ) ) {
			$out[] = 'role: ' . ( $a['role'] ?? '' );
		}
		foreach ( self::PERSON_FIELDS as $key => $label ) {
			if ( self::norm( $a[ $key ] ?? null ) !== self::norm( $b[ $key ] ?? null ) ) {
				$out[] = $label;
			}
		}
		return $out ? $out : array( 'no change (sent again)' );
	}

	/**
	 * @param mixed      $a This table.
	 * @param mixed|null $b The one before, or null.
	 * @return string[]
	 */
	private static function policy( $a, $b ) {
		if ( ! is_array( $a ) ) {
			return array();
		}
		if ( ! is_array( $b ) ) {
			return array( 'role table' );
		}
		$out = array();
		foreach ( (array) ( $a['roles'] ?? array() ) as $role => $rules ) {
			if ( self::norm( $rules ) !== self::norm( $b['roles'][ $role ] ?? null ) ) {
				$out[] = 'role table: ' . $role;
			}
		}
		if ( ( $a['max_group_size'] ?? null ) !== ( $b['max_group_size'] ?? null ) ) {
			$out[] = 'role table: largest group';
		}
		return $out ? $out : array( 'role table (sent again)' );
	}

	/**
	 * A value compared without regard to list order.
	 *
	 * @param mixed $value Value.
	 * @return string
	 */
	private static function norm( $value ) {
		if ( is_array( $value ) ) {
			if ( array_is_list( $value ) ) {
				$value = array_map( array( __CLASS__, 'norm' ), $value );
				sort( $value );
			} else {
				ksort( $value );
				$value = array_map( array( __CLASS__, 'norm' ), $value );
			}
		}
		return (string) json_encode( $value );
	}
}
