<?php
/**
 * The Restrictions screen's document: the bridge's role table (config/policy.yaml's shape) as
 * JSON, checked by the same rules as the bridge's Policy.from_data (bridge/core/policy.py), so a table
 * the bridge would refuse is refused here, naming the field, before anything is saved or sent.
 * Keys the bridge does not know are kept and sent as they are (it ignores them).
 * tests/wp/test_wp_units.py runs the same documents through both and expects the same verdicts.
 *
 * @package Firm_Bridge
 */

if ( ! defined( 'ABSPATH' ) && ! defined( 'FIRM_BRIDGE_UNIT_TESTS' ) ) {
	exit;
}

/**
 * Parses, checks and prints the policy document.
 */
final class Firm_Bridge_Policy_Doc {

	const MAX_BYTES = 65536;

	/** The firm's roles, as the bridge names them (bridge/core/model.py Role). */
	const ROLES = array( 'partner', 'associate', 'paralegal', 'assistant', 'client', 'administrator' );

	/** Which matter rooms a role joins (bridge/core/policy.py MATTER_ROOMS). */
	const MATTER_ROOMS = array( 'assigned', 'assigned_non_privileged', 'none' );

	/** With whom a role may hold a conversation (bridge/core/policy.py CONVERSATION_RULES). */
	const CONVERSATION_RULES = array( 'firm_members', 'assigned_clients', 'assigned_clients_non_privileged', 'supervising_partner', 'assigned_attorneys', 'clients_for_scheduling' );

	/** Power levels are below the bridge's own (100), which only it holds. */
	const MAX_POWER_LEVEL = 99;

	const DEFAULT_MAX_GROUP_SIZE = 8;
	const MIN_GROUP_SIZE         = 2;
	const MAX_GROUP_SIZE         = 100;

	/**
	 * @param string $text JSON text from the form.
	 * @return array array{policy:?array, error:?string}
	 */
	public static function parse( $text ) {
		$text = (string) $text;
		if ( strlen( $text ) > self::MAX_BYTES ) {
			return self::error( 'the policy is larger than 64 KiB' );
		}
		if ( '' === trim( $text ) ) {
			return self::error( 'the policy is empty' );
		}
		try {
			$data = json_decode( $text, true, 32, JSON_THROW_ON_ERROR );
		} catch ( JsonException $e ) {
			return self::error( 'not valid JSON: ' . $e->getMessage() );
		}
		if ( ! is_array( $data ) || ( array() !== $data && array_is_list( $data ) ) ) {
			return self::error( 'the policy must be a JSON object' );
		}
		$problem = self::check( $data );
		if ( null !== $problem ) {
			return self::error( $problem['message'], $problem['field'] );
		}
		return array(
			'policy' => $data,
			'error'  => null,
			'field'  => null,
		);
	}

	/**
	 * The bridge's rules for a role table (Policy.from_data), in its order and words.
	 *
	 * @param array $data Decoded document.
	 * @return array|null array{field:string, message:string} for the first problem, or null.
	 */
	public static function check( array $data ) {
		if ( ! isset( $data['roles'] ) || ! is_array( $data['roles'] ) || ( array() !== $data['roles'] && array_is_list( $data['roles'] ) ) ) {
			return self::problem( 'roles', '"roles" must be an object of role names' );
		}
		foreach ( $data['roles'] as $name => $role ) {
			$name = (string) $name;
			if ( ! in_array( $name, self::ROLES, true ) ) {
				return self::problem( 'roles.' . $name, sprintf( "unknown role '%s' (known: %s)", $name, implode( ', ', self::ROLES ) ) );
			}
			if ( ! is_array( $role ) || ( array() !== $role && array_is_list( $role ) ) ) {
				return self::problem( 'roles.' . $name, sprintf( "role '%s' must be an object", $name ) );
			}
			$level = $role['power_level'] ?? null;
			if ( ! is_int( $level ) || $level < 0 || $level > self::MAX_POWER_LEVEL ) {
				return self::problem( "roles.$name.power_level", sprintf( 'roles.%s.power_level must be an integer from 0 to %d', $name, self::MAX_POWER_LEVEL ) );
			}
			if ( ! in_array( $role['matter_rooms'] ?? null, self::MATTER_ROOMS, true ) ) {
				return self::problem( "roles.$name.matter_rooms", sprintf( 'roles.%s.matter_rooms must be one of %s', $name, implode( ', ', self::MATTER_ROOMS ) ) );
			}
			$talks = $role['conversations'] ?? null;
			$known = is_array( $talks ) && array_is_list( $talks );
			foreach ( $known ? $talks : array() as $rule ) {
				$known = $known && in_array( $rule, self::CONVERSATION_RULES, true );
			}
			if ( ! $known ) {
				return self::problem( "roles.$name.conversations", sprintf( 'roles.%s.conversations must be a list of: %s (an empty list means no one)', $name, implode( ', ', self::CONVERSATION_RULES ) ) );
			}
			// Optional (the bridge's default: partners and associates may export transcripts).
			if ( array_key_exists( 'export_transcripts', $role ) && ! is_bool( $role['export_transcripts'] ) ) {
				return self::problem( "roles.$name.export_transcripts", sprintf( 'roles.%s.export_transcripts must be true or false', $name ) );
			}
		}
		$missing = array_values( array_diff( self::ROLES, array_map( 'strval', array_keys( $data['roles'] ) ) ) );
		if ( $missing ) {
			return self::problem( 'roles', 'roles missing: ' . implode( ', ', $missing ) );
		}
		$size = array_key_exists( 'max_group_size', $data ) ? $data['max_group_size'] : self::DEFAULT_MAX_GROUP_SIZE;
		if ( ! is_int( $size ) || $size < self::MIN_GROUP_SIZE || $size > self::MAX_GROUP_SIZE ) {
			return self::problem( 'max_group_size', sprintf( 'max_group_size must be an integer from %d to %d', self::MIN_GROUP_SIZE, self::MAX_GROUP_SIZE ) );
		}
		return null;
	}

	/**
	 * @param string $field   Where, as a dotted path.
	 * @param string $message What is wrong.
	 * @return array
	 */
	private static function problem( $field, $message ) {
		return array(
			'field'   => $field,
			'message' => $message,
		);
	}

	/**
	 * The document as the screen shows it.
	 *
	 * @param array $policy Parsed policy.
	 * @return string
	 */
	public static function pretty( array $policy ) {
		return (string) json_encode( self::objects( $policy ), JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE );
	}

	/**
	 * The body of PUT /_firm/v1/policy.
	 *
	 * @param array $policy Parsed policy.
	 * @return string
	 */
	public static function body( array $policy ) {
		return (string) json_encode( array( 'policy' => self::objects( $policy ) ), JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE );
	}

	/**
	 * Empty PHP arrays that were JSON objects would print as []; the document's maps stay maps.
	 *
	 * @param array $policy Parsed policy.
	 * @return array|object
	 */
	private static function objects( array $policy ) {
		if ( isset( $policy['roles'] ) && is_array( $policy['roles'] ) ) {
			foreach ( $policy['roles'] as $name => $role ) {
				if ( array() === $role ) {
					$policy['roles'][ $name ] = new stdClass();
				}
			}
		}
		return $policy;
	}

	/**
	 * @param string      $message What is wrong.
	 * @param string|null $field   Where, when it is one field.
	 * @return array
	 */
	private static function error( $message, $field = null ) {
		return array(
			'policy' => null,
			'error'  => $message,
			'field'  => $field,
		);
	}
}
