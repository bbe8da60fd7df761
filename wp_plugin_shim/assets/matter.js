/* On a matter's screen: ticking Privileged while paralegals are assigned says, next to the box,
   that they will be kept out of the room. */
( function () {
	var box = document.getElementById( 'firm_matter_privileged' );
	var paralegals = document.getElementById( 'firm_matter_paralegals' );
	var note = document.getElementById( 'firm-privileged-note' );
	if ( ! box || ! paralegals || ! note ) {
		return;
	}
	function update() {
		var names = Array.prototype.filter.call( paralegals.options, function ( o ) {
			return o.selected;
		} ).map( function ( o ) {
			return o.textContent;
		} );
		var show = box.checked && names.length > 0;
		note.hidden = ! show;
		note.textContent = show ? note.getAttribute( 'data-template' ).replace( '%s', names.join( ', ' ) ) : '';
	}
	box.addEventListener( 'change', update );
	paralegals.addEventListener( 'change', update );
} )();
