// Sends a SAML message on at once (to the Servicekonto, or back to this portal). Without
// JavaScript the citizen presses the form's button instead; nothing else depends on this script.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("saml-weiter");
  if (form) { form.submit(); }
});
