/* A person whose name the firm sets sees their name fields as read-only, with the reason; the
   server keeps the stored name whatever is sent (Firm_Bridge_People::keep_own_name). */
( function () {
	var settings = window.firmBridgeProfile || {};
	var note = document.createElement( 'p' );
	note.id = 'firm-bridge-name-note';
	note.className = 'description';
	note.textContent = settings.note || '';
	[ 'first_name', 'last_name', 'nickname', 'display_name' ].forEach( function ( id ) {
		var field = document.getElementById( id );
		if ( ! field ) {
			return;
		}
		if ( 'SELECT' === field.tagName ) {
			// A select cannot be read-only; disabled, it is not sent, and nothing is lost.
			field.disabled = true;
		} else {
			field.readOnly = true;
		}
		field.setAttribute( 'aria-describedby', note.id );
	} );
	var heading = document.getElementById( 'first_name' );
	var table = heading && heading.closest( 'table' );
	if ( table ) {
		table.parentNode.insertBefore( note, table );
	}
} )();
