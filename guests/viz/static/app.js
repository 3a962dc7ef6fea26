// Fills the table box from an uploaded file or the bundled example. Relative URLs only, so
// the app works under any mount prefix.
const data = document.getElementById("data");
const file = document.getElementById("file");
const example = document.getElementById("example");
if (file && data) {
  file.addEventListener("change", () => {
    const chosen = file.files[0];
    if (!chosen) return;
    const reader = new FileReader();
    reader.onload = () => { data.value = reader.result; };
    reader.readAsText(chosen);
  });
}
if (example && data) {
  example.addEventListener("click", async () => {
    const response = await fetch("static/example.tsv");
    data.value = await response.text();
  });
}
