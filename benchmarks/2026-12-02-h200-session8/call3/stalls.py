import csv, sys
fn=sys.argv[1]
rows=list(csv.reader(open(fn)))
hdr=rows[1]; data=rows[2:]
ix={h:i for i,h in enumerate(hdr)}
def f(r,k):
    try: return float(r[ix[k]].replace(',',''))
    except: return 0.0
tot=sum(f(r,'Warp Stall Sampling (All Samples)') for r in data)
lsb=sum(f(r,'stall_long_sb') for r in data)
print(fn, 'instructions', len(data), 'samples', tot, 'long_sb', lsb, 'share', lsb/tot)
# top long_sb instructions
top=sorted(range(len(data)), key=lambda i: -f(data[i],'stall_long_sb'))[:25]
for i in sorted(top):
    r=data[i]
    print(i, r[ix['Address']], r[ix['Source']][:70], 'lsb', f(r,'stall_long_sb'), 'all', f(r,'Warp Stall Sampling (All Samples)'))
