// Sends the SAML answer on to the portal at once. Without JavaScript the citizen presses the
// button "Weiter zum Portal" instead; nothing else depends on this script.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("saml-weiter");
  if (form) { form.submit(); }
});
