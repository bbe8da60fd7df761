/* The Firm chat fields of a user's profile follow the role chosen: the supervising partner for
   associates, assigned attorneys for clients and paralegals, chat access for every firm role. */
( function () {
	var role = document.getElementById( 'role' );
	var rows = document.querySelectorAll( 'tr.firm-field[data-firm-roles]' );
	if ( ! role || ! rows.length ) {
		return;
	}
	function follow() {
		rows.forEach( function ( row ) {
			var roles = row.getAttribute( 'data-firm-roles' ).split( ' ' );
			row.hidden = roles.indexOf( role.value ) === -1;
		} );
	}
	role.addEventListener( 'change', follow );
	follow();
} )();
