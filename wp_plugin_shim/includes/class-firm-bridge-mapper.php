<?php
/**
 * WordPress people and matters -> provisioning API bodies (config/openapi.yaml: PersonInput,
 * MatterInput). Pure: callers pass plain arrays, so the PHPUnit tests need no WordPress.
 *
 * References the bridge would refuse (a departed person, a role that cannot hold the capacity)
 * are left out of the body and reported, so one stale reference never blocks a whole change.
 *
 * @package Firm_Bridge
 */

if ( ! defined( 'ABSPATH' ) && ! defined( 'FIRM_BRIDGE_UNIT_TESTS' ) ) {
	exit;
}

/**
 * Builds request bodies.
 */
final class Firm_Bridge_Mapper {

	/**
	 * WordPress role -> firm role, in precedence order (a user holding several takes the first).
	 */
	const ROLES = array(
		'firm_partner'   => 'partner',
		'firm_associate' => 'associate',
		'firm_paralegal' => 'paralegal',
		'firm_assistant' => 'assistant',
		'firm_client'    => 'client',
		'administrator'  => 'administrator',
	);

	/** Firm roles that count as attorneys (assigned attorneys of clients and paralegals). */
	const ATTORNEY_ROLES = array( 'partner', 'associate' );

	/** Which firm roles may hold each capacity on a matter (bridge/core/model.py CAPACITY_ROLES). */
	const CAPACITY_ROLES = array(
		'clients'             => array( 'client' ),
		'responsible_partner' => array( 'partner' ),
		'associates'          => array( 'associate', 'partner' ),
		'paralegals'          => array( 'paralegal' ),
	);

	const MAX_TEXT = 255;

	/**
	 * The firm role of a user with these WordPress roles, or null for no firm role.
	 *
	 * @param string[] $wp_roles WordPress role slugs.
	 * @return string|null
	 */
	public static function firm_role( array $wp_roles ) {
		foreach ( self::ROLES as $wp_role => $firm_role ) {
			if ( in_array( $wp_role, $wp_roles, true ) ) {
				return $firm_role;
			}
		}
		return null;
	}

	/**
	 * Text as the bridge accepts it: entities decoded, no control characters, at most 255
	 * characters (not bytes).
	 *
	 * @param mixed $value Raw value.
	 * @return string
	 */
	public static function text( $value ) {
		$text = html_entity_decode( (string) $value, ENT_QUOTES | ENT_HTML5, 'UTF-8' );
		$text = (string) preg_replace( '/[\x00-\x1F\x7F]+/u', ' ', $text );
		$text = trim( (string) preg_replace( '/\s{2,}/u', ' ', $text ) );
		if ( function_exists( 'mb_substr' ) ) {
			return trim( mb_substr( $text, 0, self::MAX_TEXT, 'UTF-8' ) );
		}
		return trim( substr( $text, 0, self::MAX_TEXT ) );
	}

	/**
	 * Positive integer ids, in order, without repeats.
	 *
	 * @param mixed $value A list (or a single id).
	 * @return int[]
	 */
	public static function ids( $value ) {
		if ( null === $value || '' === $value || false === $value ) {
			return array();
		}
		$out = array();
		foreach ( (array) $value as $item ) {
			if ( is_int( $item ) || ( is_string( $item ) && 1 === preg_match( '/\A[0-9]{1,18}\z/', $item ) ) ) {
				$id = (int) $item;
				if ( $id > 0 && ! in_array( $id, $out, true ) ) {
					$out[] = $id;
				}
			}
		}
		return $out;
	}

	/**
	 * Whether a directory entry is an active person holding one of these roles.
	 *
	 * @param array    $directory id => array{role:?string, active:bool}.
	 * @param int      $id        Person id.
	 * @param string[] $roles     Accepted firm roles.
	 * @return string|null Why not, or null when fine.
	 */
	private static function unfit( array $directory, $id, array $roles ) {
		if ( ! isset( $directory[ $id ] ) ) {
			return 'no such person';
		}
		$entry = $directory[ $id ];
		if ( empty( $entry['role'] ) ) {
			return 'has no firm role';
		}
		if ( empty( $entry['active'] ) ) {
			return 'has departed';
		}
		if ( ! in_array( $entry['role'], $roles, true ) ) {
			return 'is a ' . $entry['role'];
		}
		return null;
	}

	/**
	 * The PUT /_firm/v1/people/{id} body for a user.
	 *
	 * @param array $user      array{id:int, login:string, display_name:string, email:string,
	 *                         roles:string[], suspended:bool, erased?:bool, supervisor:mixed,
	 *                         attorneys:mixed}.
	 * @param array $directory id => array{role:?string, active:bool} for referenced people.
	 * @return array|null array{body:array, deps:int[], dropped:array} or null without a firm role.
	 */
	public static function person( array $user, array $directory ) {
		$role = self::firm_role( (array) ( $user['roles'] ?? array() ) );
		if ( null === $role ) {
			return null;
		}
		$id      = (int) $user['id'];
		$dropped = array();
		$erased  = ! empty( $user['erased'] );

		$supervisor = null;
		if ( 'associate' === $role ) {
			foreach ( self::ids( $user['supervisor'] ?? null ) as $candidate ) {
				$why = $candidate === $id ? 'is the person themself' : self::unfit( $directory, $candidate, array( 'partner' ) );
				if ( null === $why ) {
					$supervisor = $candidate;
				} else {
					$dropped[] = array( 'field' => 'supervisor', 'id' => $candidate, 'why' => $why );
				}
				break;
			}
		}
		$attorneys = array();
		if ( in_array( $role, array( 'paralegal', 'client' ), true ) ) {
			foreach ( self::ids( $user['attorneys'] ?? null ) as $candidate ) {
				$why = $candidate === $id ? 'is the person themself' : self::unfit( $directory, $candidate, self::ATTORNEY_ROLES );
				if ( null === $why ) {
					$attorneys[] = $candidate;
				} else {
					$dropped[] = array( 'field' => 'attorneys', 'id' => $candidate, 'why' => $why );
				}
			}
			sort( $attorneys );
		}
		$login = (string) $user['login'];
		$name  = $erased ? 'Former member ' . $id : self::text( $user['display_name'] ?? '' );
		if ( '' === $name ) {
			$name = self::text( $login );
		}
		$email = $erased ? '' : self::text( $user['email'] ?? '' );
		if ( '' !== $email && 1 !== preg_match( '/\A[^@\s]+@[^@\s]+\z/u', $email ) ) {
			$email = '';
		}
		$body = array(
			'login'        => $login,
			'display_name' => $name,
			'email'        => $email,
			'role'         => $role,
			'supervisor'   => $supervisor,
			'attorneys'    => $attorneys,
			'active'       => empty( $user['suspended'] ) && ! $erased,
		);
		$deps = $attorneys;
		if ( null !== $supervisor ) {
			$deps[] = $supervisor;
		}
		return array(
			'body'    => $body,
			'deps'    => $deps,
			'dropped' => $dropped,
		);
	}

	/**
	 * The PUT /_firm/v1/matters/{id} body for a matter.
	 *
	 * @param array $matter    array{id:int, number:string, title:string, post_status:string,
	 *                         status:string, privileged:mixed, clients:mixed,
	 *                         responsible_partner:mixed, associates:mixed, paralegals:mixed}.
	 * @param array $directory id => array{role:?string, active:bool} for assigned people.
	 * @return array array{body:array, deps:int[], dropped:array}
	 */
	public static function matter( array $matter, array $directory ) {
		$id       = (int) $matter['id'];
		$dropped  = array();
		$assigned = array();
		$lists    = array();
		$wall     = self::ids( $matter['walled_off'] ?? array() );
		foreach ( self::CAPACITY_ROLES as $field => $roles ) {
			$lists[ $field ] = array();
			foreach ( self::ids( $matter[ $field ] ?? null ) as $pid ) {
				$why = in_array( $pid, $wall, true ) ? 'is walled off from this matter' : self::unfit( $directory, $pid, $roles );
				if ( null === $why && isset( $assigned[ $pid ] ) ) {
					// The bridge takes one capacity per person; the first listed wins.
					$why = 'is already assigned as ' . $assigned[ $pid ];
				}
				if ( null !== $why ) {
					$dropped[] = array( 'field' => $field, 'id' => $pid, 'why' => $why );
					continue;
				}
				if ( 'responsible_partner' === $field && ! empty( $lists[ $field ] ) ) {
					$dropped[] = array( 'field' => $field, 'id' => $pid, 'why' => 'only one responsible partner' );
					continue;
				}
				$assigned[ $pid ] = $field;
				$lists[ $field ][] = $pid;
			}
		}
		$number = self::text( $matter['number'] ?? '' );
		if ( '' === $number ) {
			$number = 'M-' . $id;
		}
		$title = self::text( $matter['title'] ?? '' );
		if ( '' === $title ) {
			$title = $number;
		}
		$live   = in_array( $matter['post_status'] ?? '', array( 'publish', 'private' ), true );
		$status = ( $live && 'closed' !== ( $matter['status'] ?? 'open' ) ) ? 'open' : 'closed';
		$body   = array(
			'number'              => $number,
			'title'               => $title,
			'clients'             => $lists['clients'],
			'responsible_partner' => $lists['responsible_partner'] ? $lists['responsible_partner'][0] : null,
			'associates'          => $lists['associates'],
			'paralegals'          => $lists['paralegals'],
			'privileged'          => self::truthy( $matter['privileged'] ?? false ),
			'status'              => $status,
		);
		// Retention is sent only when set: leaving a field out means the bridge's default, the
		// same as sending null or false, and keeps bodies valid for bridges without retention.
		foreach ( array( 'retention_open_days', 'retention_closed_days', 'retention_media_days' ) as $field ) {
			$days = self::days( $matter[ $field ] ?? null );
			if ( null !== $days ) {
				$body[ $field ] = $days;
			}
		}
		if ( self::truthy( $matter['legal_hold'] ?? false ) ) {
			$body['legal_hold'] = true;
		}
		if ( array_key_exists( 'walled_off', $matter ) ) {
			$body['walled_off'] = $wall; // Always, when known: [] lifts a wall at the bridge.
		}
		return array(
			'body'    => $body,
			'deps'    => array_keys( $assigned ),
			'dropped' => $dropped,
		);
	}

	/**
	 * A retention period in days (fractions allowed), or null for the default.
	 *
	 * @param mixed $value Raw value.
	 * @return int|float|null
	 */
	public static function days( $value ) {
		if ( null === $value || is_bool( $value ) || ! is_numeric( $value ) ) {
			return null;
		}
		$days = 0 + $value;
		if ( $days <= 0 || $days > 365250 ) {
			return null;
		}
		return ( is_float( $days ) && floor( $days ) !== $days ) ? (float) $days : (int) $days;
	}

	/**
	 * A meta value as a boolean ('1', 'yes', 'true', true).
	 *
	 * @param mixed $value Raw value.
	 * @return bool
	 */
	public static function truthy( $value ) {
		if ( is_bool( $value ) ) {
			return $value;
		}
		return in_array( strtolower( trim( (string) $value ) ), array( '1', 'yes', 'true', 'on' ), true );
	}
}
