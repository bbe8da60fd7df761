<?php
/**
 * The Restrictions screen's document: the bridge's role table (config/policy.yaml's shape) as
 * JSON. Deliberately generic: it checks only the outline (an object with a "roles" object of
 * objects) and leaves every rule to the bridge, which validates the table and names the problem,
 * so the format can grow without changing the plugin.
 *
 * @package Firm_Bridge
 */

if ( ! defined( 'ABSPATH' ) && ! defined( 'FIRM_BRIDGE_UNIT_TESTS' ) ) {
	exit;
}

/**
 * Parses and prints the policy document.
 */
final class Firm_Bridge_Policy_Doc {

	const MAX_BYTES = 65536;

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
		if ( ! isset( $data['roles'] ) || ! is_array( $data['roles'] ) || array_is_list( $data['roles'] ) ) {
			return self::error( '"roles" must be an object of role names' );
		}
		foreach ( $data['roles'] as $name => $role ) {
			if ( ! is_array( $role ) || ( array() !== $role && array_is_list( $role ) ) ) {
				return self::error( 'roles.' . $name . ' must be an object' );
			}
		}
		return array(
			'policy' => $data,
			'error'  => null,
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
	 * @param string $message What is wrong.
	 * @return array
	 */
	private static function error( $message ) {
		return array(
			'policy' => null,
			'error'  => $message,
		);
	}
}
