// The page in a real browser: headless Chromium (Debian's `chromium` package) driven by
// playwright-core loads /, types a prime, clicks Generate, waits until streamed text that
// begins with the prime appears, and saves a screenshot.
//
//   node tests/browser/page.mjs URL SCREENSHOT.png [CHROMIUM]
import { chromium } from "playwright-core";

const [url, shot, exe = "/usr/bin/chromium"] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: exe,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 390, height: 844 } }); // a phone's width
  await page.goto(url);
  await page.waitForSelector("#model option", { state: "attached" });
  await page.fill("#prime", "ROMEO:");
  await page.fill("#length", "300");
  await page.fill("#seed", "7");
  await page.click("#generate");
  await page.waitForFunction(() => {
    const t = document.getElementById("out").textContent;
    return t.startsWith("ROMEO:") && t.length > 100 && document.getElementById("cmd").textContent.includes("--seed 7");
  }, null, { timeout: 30000 });
  await page.waitForFunction(() => !document.getElementById("generate").disabled, null, { timeout: 30000 });
  const text = await page.textContent("#out");
  const cmd = await page.textContent("#cmd");
  const stats = await page.textContent("#stats");
  await page.screenshot({ path: shot, fullPage: true });
  console.log(JSON.stringify({ text, cmd, stats }));
} finally {
  await browser.close();
}
