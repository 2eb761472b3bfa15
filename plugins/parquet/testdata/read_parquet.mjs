// The independent reader of the parquet plugin's end-to-end test: it reads
// a Parquet file with hyparquet (pure JavaScript, no code in common with
// parquet-go) and prints, as JSON lines, the schema then every row, with
// the timestamp as its integer nanoseconds and numbers as text, so that the
// Go test compares them exactly with the CSV.
//
//	node read_parquet.mjs <dir holding node_modules> <file.parquet>
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

const [modules, file] = process.argv.slice(2)
if (!modules || !file) {
  console.error('usage: node read_parquet.mjs <dir holding node_modules> <file.parquet>')
  process.exit(2)
}
const load = (pkg, entry) => import(pathToFileURL(join(modules, 'node_modules', pkg, entry)).href)
const { asyncBufferFromFile, parquetMetadataAsync, parquetSchema, parquetReadObjects } = await load('hyparquet', 'src/node.js')
const { compressors } = await load('hyparquet-compressors', 'src/index.js')

const buf = await asyncBufferFromFile(file)
const metadata = await parquetMetadataAsync(buf)
const schema = parquetSchema(metadata)
const columns = schema.children.map(c => ({
  name: c.element.name,
  type: c.element.type,
  repetition: c.element.repetition_type,
  logical: c.element.logical_type ?? null,
}))
const codecs = [...new Set(metadata.row_groups.flatMap(rg => rg.columns.map(c => c.meta_data.codec)))]
const text = v => typeof v === 'bigint' ? v.toString() : typeof v === 'number' ? String(v) : v
const big = (k, v) => typeof v === 'bigint' ? v.toString() : v
process.stdout.write(JSON.stringify({ columns, codecs, row_groups: metadata.row_groups.length, rows: text(metadata.num_rows) }, big) + '\n')

const rows = await parquetReadObjects({
  file: buf,
  compressors,
  parsers: { timestampFromNanoseconds: ns => ns }, // keep the nanoseconds (the default is a Date, in ms)
  utf8: true,
})
for (const r of rows) {
  const out = {}
  for (const [k, v] of Object.entries(r)) {
    if (v === null || v === undefined) out[k] = null
    else if (k === '__late_attributes') out[k] = JSON.stringify(v) // parsed from the JSON logical type
    else out[k] = text(v)
  }
  process.stdout.write(JSON.stringify(out) + '\n')
}
