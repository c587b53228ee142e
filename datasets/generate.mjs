// Writes the example datasets in this folder. They are ours: generated from the templates below with a fixed
// seed, so `node datasets/generate.mjs` reproduces them byte for byte.
import { writeFileSync } from "node:fs";

let state = 20261122;
const random = () => {
  state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
  return state / 4294967296;
};
const pick = (list) => list[Math.floor(random() * list.length)];
const int = (lo, hi) => lo + Math.floor(random() * (hi - lo + 1));
const jsonl = (file, rows) => writeFileSync(new URL(file, import.meta.url), rows.map((r) => JSON.stringify(r)).join("\n") + "\n");

// chat-units.jsonl: a terse unit-conversion assistant that always answers in one line ending with "— done."
const conversions = [
  { from: "kilometres", to: "miles", f: (x) => x * 0.621371, unit: "mi" },
  { from: "miles", to: "kilometres", f: (x) => x * 1.609344, unit: "km" },
  { from: "kilograms", to: "pounds", f: (x) => x * 2.204623, unit: "lb" },
  { from: "pounds", to: "kilograms", f: (x) => x * 0.453592, unit: "kg" },
  { from: "litres", to: "US gallons", f: (x) => x * 0.264172, unit: "gal" },
  { from: "metres", to: "feet", f: (x) => x * 3.28084, unit: "ft" },
  { from: "inches", to: "centimetres", f: (x) => x * 2.54, unit: "cm" },
  { from: "degrees Celsius", to: "degrees Fahrenheit", f: (x) => x * 1.8 + 32, unit: "°F" },
];
const asks = ["How many {to} is {x} {from}?", "Convert {x} {from} to {to}.", "{x} {from} in {to}?", "What is {x} {from} in {to}, please?"];
const chat = [];
for (let i = 0; i < 300; i += 1) {
  const c = pick(conversions);
  const x = int(1, 250);
  const question = pick(asks).replace("{x}", x).replace("{from}", c.from).replace("{to}", c.to);
  const answer = `${x} ${c.from} = ${c.f(x).toFixed(1)} ${c.unit} — done.`;
  const messages = [{ role: "user", content: question }, { role: "assistant", content: answer }];
  if (i % 5 === 0) messages.unshift({ role: "system", content: "You convert units. One line, one decimal, end with — done." });
  if (i % 7 === 0) {
    const c2 = pick(conversions);
    const y = int(1, 250);
    messages.push({ role: "user", content: `And ${y} ${c2.from} to ${c2.to}?` }, { role: "assistant", content: `${y} ${c2.from} = ${c2.f(y).toFixed(1)} ${c2.unit} — done.` });
  }
  chat.push({ messages });
}
jsonl("chat-units.jsonl", chat);

// alpaca-words.jsonl: small deterministic word tasks with instruction / input / output.
const words = ["planet", "garden", "silver", "window", "rocket", "pencil", "forest", "candle", "bridge", "marble", "yellow", "harbor", "winter", "meadow", "lantern", "compass", "thunder", "orchard", "velvet", "glacier"];
const tasks = [
  { instruction: "Reverse the letters of the word.", run: (w) => [...w].reverse().join("") },
  { instruction: "Write the word in capital letters.", run: (w) => w.toUpperCase() },
  { instruction: "Count the vowels in the word.", run: (w) => `${[...w].filter((ch) => "aeiou".includes(ch)).length}` },
  { instruction: "Give the first and the last letter of the word.", run: (w) => `${w[0]} and ${w[w.length - 1]}` },
  { instruction: "Spell the word with hyphens between the letters.", run: (w) => [...w].join("-") },
  { instruction: "How many letters does the word have?", run: (w) => `${w.length}` },
];
const alpaca = [];
for (let i = 0; i < 300; i += 1) {
  const task = pick(tasks);
  const word = pick(words);
  alpaca.push(i % 10 === 0 ? { instruction: `${task.instruction} The word is "${word}".`, output: task.run(word) } : { instruction: task.instruction, input: word, output: task.run(word) });
}
jsonl("alpaca-words.jsonl", alpaca);

// text-fables.jsonl: two-sentence fables built from a small grammar.
const animals = ["fox", "owl", "hedgehog", "otter", "crow", "tortoise", "badger", "sparrow", "mouse", "heron"];
const places = ["by the river", "under the old oak", "on the hill", "at the edge of the wood", "in the meadow", "near the mill"];
const deeds = ["found a shiny pebble", "lost its way home", "shared its berries", "built a small nest", "waited for the rain", "counted the stars"];
const morals = ["Kindness returns to those who give it.", "Patience is its own reward.", "Small steps still reach far places.", "A friend in need is a friend indeed.", "Curiosity finds what hurry misses."];
const text = [];
for (let i = 0; i < 300; i += 1) {
  const adjective = pick(["little", "clever", "sleepy", "brave", "curious", "old"]);
  const article = "aeiou".includes(adjective[0]) ? "an" : "a";
  text.push({ text: `Once, ${article} ${adjective} ${pick(animals)} ${pick(places)} ${pick(deeds)}. ${pick(morals)}` });
}
jsonl("text-fables.jsonl", text);
